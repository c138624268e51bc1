/* Hand-written AVX2 + FMA + F16C one-token kernels of the 32-element block
 * types; the k-quants are in simd_k_avx2.c, float weights in simd_float.c,
 * many tokens in tile_avx2.c.
 *
 * Eight rows at a time, one per float lane: each row's block is multiplied
 * into 8 int32 lanes, sum_rows8 turns the 8 rows' lanes into one exact
 * integer per row, and the floats follow kernels.h's order, which is also
 * the tile kernels' (one row per lane there too), so a row comes out the
 * same whatever the number of tokens. The blocks' f16 scales of the 8 rows
 * come in with one gather. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "simd_x86.h"

/* u against both levels of quants: sums of u * (256 * s + s2) per 4 elements. */
static inline __m256i dot2_us8(__m256i u, __m256i s, __m256i s2) {
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(256));
    return _mm256_add_epi32(p, mul_sum_us8(u, s2));
}

/* One row's block against the block's two levels of quants: 8 int32 lanes
 * adding up to its integer (Q4_0 and Q5_0 with unsigned weights: their
 * offset comes off afterwards). */
static inline __m256i lanes_q4_0(const uint8_t *b, __m256i x, __m256i x2) { return dot2_us8(nibbles32(b + 2), x, x2); }
static inline __m256i lanes_q4_1(const uint8_t *b, __m256i x, __m256i x2) { return dot2_us8(nibbles32(b + 4), x, x2); }

static inline __m256i lanes_q5_0(const uint8_t *b, __m256i x, __m256i x2) {
    return dot2_us8(_mm256_or_si256(nibbles32(b + 6), fifth_bits32(rd32(b + 2))), x, x2);
}

static inline __m256i lanes_q5_1(const uint8_t *b, __m256i x, __m256i x2) {
    return dot2_us8(_mm256_or_si256(nibbles32(b + 8), fifth_bits32(rd32(b + 4))), x, x2);
}

static inline __m256i lanes_q8_0(const uint8_t *b, __m256i x, __m256i x2) {
    __m256i w = _mm256_loadu_si256((const __m256i *)(b + 2));
    return dot2_us8(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w), _mm256_sign_epi8(x2, w));
}

/* The first two f16 of each block (d, and Q4_1/Q5_1's m) of 8 rows. */
static inline void f16_pairs8(const uint8_t *b, __m256i idx, __m256 *d, __m256 *m) {
    const __m256i shuf = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                          0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    __m256i g = _mm256_i32gather_epi32((const int *)b, idx, 1);
    g = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(g, shuf), 0xD8); /* d0-7 | m0-7 */
    *d = _mm256_cvtph_ps(_mm256_castsi256_si128(g));
    *m = _mm256_cvtph_ps(_mm256_extracti128_si256(g, 1));
}

#define MM32(NAME, BB, OFF, HASMIN)                                                            \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        const int nb = a->cols / 32;                                                           \
        for (int g = r0; g < r1; g += 8) {                                                     \
            const int n = r1 - g < 8 ? r1 - g : 8;                                             \
            int32_t off[8];                                                                    \
            group_offsets(off, 8, n, rb);                                                      \
            const __m256i idx = _mm256_loadu_si256((const __m256i *)off);                      \
            const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
            const uint8_t *base = w + (size_t)g * rb;                                          \
            for (int t = 0; t < a->T; t++) {                                                   \
                const int8_t *x = a->q + (size_t)t * a->cols, *x2 = a->q2 + (size_t)t * a->cols; \
                const float *xd = a->d + (size_t)t * nb, *xds = a->ds + (size_t)t * nb;        \
                const int32_t *xs = a->bsum + (size_t)t * nb;                                  \
                __m256 acc = _mm256_setzero_ps();                                              \
                for (int b = 0; b < nb; b++) {                                                 \
                    const uint8_t *p = base + (size_t)b * BB;                                  \
                    if (t == 0) prefetch_next_group(base + 8 * rb, 8 * BB, b, 0);            \
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 32 * b));            \
                    __m256i xv2 = _mm256_loadu_si256((const __m256i *)(x2 + 32 * b));          \
                    __m256i it = sum_rows8(lanes_##NAME(p + off[0], xv, xv2), lanes_##NAME(p + off[1], xv, xv2), \
                                           lanes_##NAME(p + off[2], xv, xv2), lanes_##NAME(p + off[3], xv, xv2), \
                                           lanes_##NAME(p + off[4], xv, xv2), lanes_##NAME(p + off[5], xv, xv2), \
                                           lanes_##NAME(p + off[6], xv, xv2), lanes_##NAME(p + off[7], xv, xv2)); \
                    if (OFF) it = _mm256_sub_epi32(it, _mm256_set1_epi32(OFF * xs[b]));        \
                    __m256 d, m;                                                               \
                    f16_pairs8(p, idx, &d, &m);                                                \
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(it), _mm256_mul_ps(d, _mm256_set1_ps(xd[b])), acc); \
                    if (HASMIN) acc = _mm256_fmadd_ps(m, _mm256_set1_ps(xds[b]), acc);         \
                }                                                                              \
                _mm256_maskstore_ps(out + (ptrdiff_t)t * os + g, keep, acc);                   \
            }                                                                                  \
        }                                                                                      \
    }

MM32(q4_0, 18, 8, 0)
MM32(q4_1, 20, 0, 1)
MM32(q5_0, 22, 16, 0)
MM32(q5_1, 24, 0, 1)
MM32(q8_0, 34, 0, 0)

#include "rtile_avx2.h"
#include "tiled.h"

void simd_fill_avx2(isa_table *t) {
    tiled_begin(t);
    small[W_Q4_0] = mm_q4_0;
    small[W_Q4_1] = mm_q4_1;
    small[W_Q5_0] = mm_q5_0;
    small[W_Q5_1] = mm_q5_1;
    small[W_Q8_0] = mm_q8_0;
    simd_k_avx2(small);
    fill_rtile2(small);
    tiled_end(t, &TILE_AVX2);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx2_unused;
#endif
