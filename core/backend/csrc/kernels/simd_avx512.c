/* Hand-written AVX-512 (F/BW/VL/DQ) one-token kernels of the 32-element
 * block types: the arithmetic of simd_x86.h on 64-byte registers (two
 * blocks per register, four per step); the k-quants are in simd_k_avx512.c.
 *
 * No VNNI here: every product is maddubs (u8 x s8 -> int16 pairs) then a
 * madd that sums pairs (or, for the k-quants, applies the integer sub-block
 * scales); vpdpbusd would save one instruction of about 20 per 64 weights
 * in the first case only, so one code path serves every AVX-512 CPU. The
 * tile path (tile_avx512.c) is where VNNI pays. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif

#include "simd_avx512.h"

/* Two blocks' 16 nibble bytes -> 64 bytes in element order per block. */
static inline __m512i nibbles64(const uint8_t *p0, const uint8_t *p1) {
    __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                        _mm_loadu_si128((const __m128i *)p1), 1);
    __m512i z = join256(t, _mm256_srli_epi16(t, 4)); /* lo0 lo1 hi0 hi1 */
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)); /* lo0 hi0 lo1 hi1 */
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

/* The first two f16 of each of 4 blocks (d, and m or whatever follows d),
 * as per-lane floats of two block pairs: d01/d23 hold d of blocks 0, 1 /
 * 2, 3 over 8 lanes each, m01/m23 the second value. One conversion and four
 * permutes per 4 blocks, instead of broadcasting each f16 on its own. */
typedef struct {
    __m512 d01, d23, m01, m23;
} scales4;

static inline scales4 scales_of_4(const uint8_t *b, int bb) {
    __m128i h = _mm_setr_epi32((int)rd32(b), (int)rd32(b + bb), (int)rd32(b + 2 * bb), (int)rd32(b + 3 * bb));
    __m512 f = _mm512_castps256_ps512(_mm256_cvtph_ps(h)); /* d0 m0 d1 m1 d2 m2 d3 m3 */
    const __m512i i0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i one = _mm512_set1_epi32(1), four = _mm512_set1_epi32(4);
    scales4 s;
    s.d01 = _mm512_permutexvar_ps(i0, f);
    s.m01 = _mm512_permutexvar_ps(_mm512_add_epi32(i0, one), f);
    s.d23 = _mm512_permutexvar_ps(_mm512_add_epi32(i0, four), f);
    s.m23 = _mm512_permutexvar_ps(_mm512_add_epi32(i0, _mm512_add_epi32(four, one)), f);
    return s;
}

/* Four blocks per step as two pairs (a->s4/d8/ds8 have 8 lanes per block,
 * so 16 per pair); the last nb % 4 blocks one at a time on 256 bits. BODY
 * sees the pair's blocks b0, b1, activations xv, lane index li and its
 * per-lane scales sd (d) and sm (the second f16). */
#define DOT32_4(NAME, BB, BODY)                                                                \
    static float dot4_##NAME(const uint8_t *row, int nb, const act_t *a, int t) {              \
        size_t l0 = (size_t)t * (a->cols / 4);                                                 \
        const int8_t *x = a->q + (size_t)t * a->cols;                                          \
        const int32_t *s4 = a->s4 + l0;                                                        \
        const float *d8 = a->d8 + l0, *ds8 = a->ds8 + l0;                                      \
        __m512 acc2[2], accm2[2];                                                              \
        acc2[0] = acc2[1] = accm2[0] = accm2[1] = _mm512_setzero_ps();                         \
        int i = 0;                                                                             \
        for (; i + 4 <= nb; i += 4) {                                                          \
            scales4 sc = scales_of_4(row + (size_t)i * BB, BB);                                \
            for (int j = 0; j < 2; j++) {                                                      \
                const uint8_t *b0 = row + (size_t)(i + 2 * j) * BB, *b1 = b0 + BB;             \
                __m512i xv = _mm512_loadu_si512(x + 32 * (i + 2 * j));                         \
                size_t li = 8 * (size_t)(i + 2 * j);                                           \
                __m512 sd = j ? sc.d23 : sc.d01, sm = j ? sc.m23 : sc.m01;                     \
                __m512 acc = acc2[j], accm = accm2[j];                                         \
                (void)sm;                                                                      \
                BODY                                                                           \
                acc2[j] = acc;                                                                 \
                accm2[j] = accm;                                                               \
            }                                                                                  \
        }                                                                                      \
        __m512 all = _mm512_add_ps(_mm512_add_ps(acc2[0], acc2[1]), _mm512_add_ps(accm2[0], accm2[1])); \
        float s = _mm512_reduce_add_ps(all);                                                   \
        __m256 tail = _mm256_setzero_ps(), tailm = _mm256_setzero_ps();                        \
        for (; i < nb; i++) {                                                                  \
            const uint8_t *b = row + (size_t)i * BB;                                           \
            blk_##NAME(b, x + 32 * i, s4 + 8 * i, d8 + 8 * i, ds8 + 8 * i,                     \
                       _mm256_set1_ps(h2f(b)), _mm256_set1_ps(h2f(b + 2)), &tail, &tailm);     \
        }                                                                                      \
        return s + hsum256(_mm256_add_ps(tail, tailm));                                        \
    }

#define SCALED(P) _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), _mm512_mul_ps(sd, _mm512_loadu_ps(d8 + li)), acc)
#define MINS() accm = _mm512_fmadd_ps(sm, _mm512_loadu_ps(ds8 + li), accm);
#define S4(SHIFT) _mm512_slli_epi32(_mm512_loadu_si512(s4 + li), SHIFT)

static inline __m512i fifth_bits64(const uint8_t *p0, const uint8_t *p1) {
    __mmask64 k = (__mmask64)rd32(p0) | (__mmask64)rd32(p1) << 32;
    return _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10));
}

DOT32_4(q4_0, 18, {
    __m512i p = _mm512_sub_epi32(mul_sum_us8_512(nibbles64(b0 + 2, b1 + 2), xv), S4(3));
    acc = SCALED(p);
})

DOT32_4(q4_1, 20, {
    __m512i p = mul_sum_us8_512(nibbles64(b0 + 4, b1 + 4), xv);
    acc = SCALED(p);
    MINS()
})

DOT32_4(q5_0, 22, {
    __m512i w = _mm512_or_si512(nibbles64(b0 + 6, b1 + 6), fifth_bits64(b0 + 2, b1 + 2));
    __m512i p = _mm512_sub_epi32(mul_sum_us8_512(w, xv), S4(4));
    acc = SCALED(p);
})

DOT32_4(q5_1, 24, {
    __m512i w = _mm512_or_si512(nibbles64(b0 + 8, b1 + 8), fifth_bits64(b0 + 4, b1 + 4));
    __m512i p = mul_sum_us8_512(w, xv);
    acc = SCALED(p);
    MINS()
})

DOT32_4(q8_0, 34, {
    __m512i w = join256(_mm256_loadu_si256((const __m256i *)(b0 + 2)),
                        _mm256_loadu_si256((const __m256i *)(b1 + 2)));
    __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(w), _mm512_setzero_si512(), xv);
    __m512i p = mul_sum_us8_512(_mm512_abs_epi8(w), sx);
    acc = SCALED(p);
})

/* One token at a time: each row streamed once per token. */
#define MM_ROWDOT(NAME, DOT, NBLK)                                                             \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        int nb = a->cols / NBLK;                                                               \
        for (int r = r0; r < r1; r++)                                                          \
            for (int t = 0; t < a->T; t++) out[t * os + r] = DOT(w + (size_t)r * rb, nb, a, t); \
    }

MM_ROWDOT(q4_0, dot4_q4_0, 32)
MM_ROWDOT(q4_1, dot4_q4_1, 32)
MM_ROWDOT(q5_0, dot4_q5_0, 32)
MM_ROWDOT(q5_1, dot4_q5_1, 32)
MM_ROWDOT(q8_0, dot4_q8_0, 32)

#include "tiled.h"

void simd_fill_avx512(isa_table *t) {
    tiled_begin(t);
    small[W_Q4_0] = mm_q4_0;
    small[W_Q4_1] = mm_q4_1;
    small[W_Q5_0] = mm_q5_0;
    small[W_Q5_1] = mm_q5_1;
    small[W_Q8_0] = mm_q8_0;
    simd_k_avx512(small);
    __builtin_cpu_init();
    /* without VNNI the AVX2 tile kernels (maddubs) serve */
    tiled_end(t, __builtin_cpu_supports("avx512vnni") ? &TILE_AVX512_VNNI : &TILE_AVX2);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx512_unused;
#endif
