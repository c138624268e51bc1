/* Hand-written AVX2 + FMA + F16C kernels for the hot weight types; the
 * other types keep the generic.h build of isa_avx2.c. See simd_x86.h for
 * the arithmetic of the 32-element blocks. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "simd_x86.h"
#include "tile.h"

DOT32_1(q4_0, 18)
DOT32_1(q4_1, 20)
DOT32_1(q5_0, 22)
DOT32_1(q5_1, 24)
DOT32_1(q8_0, 34)

/* Q4_K / Q5_K: the 8 six-bit scales and mins of the 12 packed bytes, as
 * bytes 0-7 of two 64-bit words (see k4_scale_min in kernels.h). */
static inline void k4_unpack_scales(const uint8_t *p, uint64_t *sc, uint64_t *mn) {
    uint32_t u0 = rd32(p), u1 = rd32(p + 4), u2 = rd32(p + 8);
    *sc = (uint64_t)(u0 & 0x3f3f3f3fu) |
          (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
    *mn = (uint64_t)(u1 & 0x3f3f3f3fu) |
          (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
}

/* sum_j mins[j] * (bsum[2j] + bsum[2j + 1]), 8 int32 lanes. */
static inline __m256i k4_min_sums(uint64_t mn, const int16_t *bsum) {
    __m128i m = _mm_cvtsi64_si128((long long)mn);
    __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
    return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsum), m16);
}

static float dot1_q4_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int8_t *x = a->q + (size_t)t * a->cols;
    const float *xd = a->d + (size_t)t * nb;
    const int16_t *bs = a->sum + (size_t)t * (a->cols / 16);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 144, x += QK_K, bs += 16) {
        uint64_t sc, mn;
        k4_unpack_scales(row + 4, &sc, &mn);
        uint8_t s[8];
        memcpy(s, &sc, 8);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(row + 16 + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * c)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * c + 32)));
            plo = _mm256_madd_epi16(plo, _mm256_set1_epi16(s[2 * c]));
            phi = _mm256_madd_epi16(phi, _mm256_set1_epi16(s[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
        }
        float dx = xd[i];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(row) * dx), acc);
        acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(k4_min_sums(mn, bs)),
                               _mm256_set1_ps(h2f(row + 2) * dx), acc);
    }
    return hsum256(acc);
}

/* Q6_K: int16 scale vectors for sub-blocks (g, g + 1): g's in the low 128-bit
 * lane, g + 1's in the high one, from the 16 scales widened to int16. */
static inline __m256i q6k_scale_pair(__m256i half_scales, int k) {
    const int j = 2 * k; /* index of g within its 8 */
    __m256i ctrl = _mm256_setr_epi8(
        2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j,
        2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j + 2, 2 * j + 3, 2 * j + 2, 2 * j + 3, 2 * j + 2,
        2 * j + 3, 2 * j + 2, 2 * j + 3, 2 * j + 2, 2 * j + 3, 2 * j + 2, 2 * j + 3, 2 * j + 2, 2 * j + 3,
        2 * j + 2, 2 * j + 3);
    return _mm256_shuffle_epi8(half_scales, ctrl);
}

static float dot1_q6_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const int8_t *x = a->q + (size_t)t * a->cols;
    const float *xd = a->d + (size_t)t * nb;
    const int16_t *bs = a->sum + (size_t)t * (a->cols / 16);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 210, x += QK_K, bs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = row + 64 * h, *qhp = row + 128 + 32 * h;
            __m256i half = _mm256_permute4x64_epi64(sc16, h ? 0xEE : 0x44);
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(x + 128 * h + 32 * k)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, q6k_scale_pair(half, k)));
            }
        }
        /* the stored 6-bit values are q + 32 */
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(row + 208) * xd[i]), acc);
    }
    return hsum256(acc);
}

/* One token at a time: each row streamed once per token. */
#define MM_ROWDOT(NAME, DOT, NBLK)                                                             \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        int nb = a->cols / NBLK;                                                               \
        for (int r = r0; r < r1; r++)                                                          \
            for (int t = 0; t < a->T; t++) out[t * os + r] = DOT(w + (size_t)r * rb, nb, a, t); \
    }

MM_ROWDOT(q4_0, dot1_q4_0, 32)
MM_ROWDOT(q4_1, dot1_q4_1, 32)
MM_ROWDOT(q5_0, dot1_q5_0, 32)
MM_ROWDOT(q5_1, dot1_q5_1, 32)
MM_ROWDOT(q8_0, dot1_q8_0, 32)
MM_ROWDOT(q4_k, dot1_q4_k, QK_K)
MM_ROWDOT(q6_k, dot1_q6_k, QK_K)

/* Few tokens: the kernels above (or generic.h's); more: the tile path. */
static mm_fn small[W_COUNT];
static const tile_kernels *tiles;

#define MM_TILED(WT)                                                                           \
    static void mm_tiled_##WT(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,     \
                              float *out, ptrdiff_t os) {                                      \
        if (a->T >= tile_min_tokens(WT) && tile_mm(tiles, WT, w, rb, r0, r1, a, out, os)) return;          \
        small[WT](w, rb, r0, r1, a, out, os);                                                  \
    }

MM_TILED(W_Q4_0)
MM_TILED(W_Q4_1)
MM_TILED(W_Q5_0)
MM_TILED(W_Q5_1)
MM_TILED(W_Q8_0)
MM_TILED(W_Q2_K)
MM_TILED(W_Q3_K)
MM_TILED(W_Q4_K)
MM_TILED(W_Q5_K)
MM_TILED(W_Q6_K)

void simd_fill_avx2(isa_table *t) {
    memcpy(small, t->mm, sizeof small);
    small[W_Q4_0] = mm_q4_0;
    small[W_Q4_1] = mm_q4_1;
    small[W_Q5_0] = mm_q5_0;
    small[W_Q5_1] = mm_q5_1;
    small[W_Q8_0] = mm_q8_0;
    small[W_Q4_K] = mm_q4_k;
    small[W_Q6_K] = mm_q6_k;
    tiles = &TILE_AVX2;
    static const int tiled[] = {W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0,
                                W_Q2_K, W_Q3_K, W_Q4_K, W_Q5_K, W_Q6_K};
    static const mm_fn tiled_fn[] = {mm_tiled_W_Q4_0, mm_tiled_W_Q4_1, mm_tiled_W_Q5_0,
                                     mm_tiled_W_Q5_1, mm_tiled_W_Q8_0, mm_tiled_W_Q2_K,
                                     mm_tiled_W_Q3_K, mm_tiled_W_Q4_K, mm_tiled_W_Q5_K,
                                     mm_tiled_W_Q6_K};
    for (size_t i = 0; i < sizeof tiled / sizeof tiled[0]; i++) t->mm[tiled[i]] = tiled_fn[i];
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx2_unused;
#endif
