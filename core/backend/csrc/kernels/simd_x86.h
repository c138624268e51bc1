/* x86 building blocks shared by simd_avx2.c and simd_avx512.c, compiled
 * under each file's target pragma: one 32-element block of each
 * 32-block weight type against 8-bit activations, as 8 float lanes (the
 * AVX2 kernels' unit of work, and the AVX-512 kernels' odd last block).
 *
 * Products are u8 x s8 pairs summed to int16 (maddubs) then to int32 per 4
 * elements (madd with ones). The unsigned side is the weight: nibbles
 * 0..15 (Q4_*), 0..31 (Q5_*) or |w| (Q8_0, with x's sign flipped where w
 * is negative), so no pair can saturate int16. The per-32 offsets of
 * Q4_0 / Q5_0 (8, 16) are subtracted as offset * s4, the activations' sums
 * per 4 elements, lane by lane. */
#ifndef CHORD_SIMD_X86_H
#define CHORD_SIMD_X86_H

#include <immintrin.h>

#include "kernels.h"

static inline float h2f(const uint8_t *p) { return _cvtsh_ss(rd16(p)); }

static inline __m256i mul_sum_us8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

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

/* Q3_K's 16 six-bit scales minus 32 as int8 lanes (q3k_scales in kernels.h,
 * kept in registers: a round trip through memory stalls store forwarding). */
static inline __m128i q3k_scales_v(const uint8_t *p) {
    const uint32_t km1 = 0x03030303u, km2 = 0x0f0f0f0fu;
    uint32_t a0 = rd32(p), a1 = rd32(p + 4), tmp = rd32(p + 8);
    __m128i v = _mm_setr_epi32((int)((a0 & km2) | (((tmp >> 0) & km1) << 4)),
                               (int)((a1 & km2) | (((tmp >> 2) & km1) << 4)),
                               (int)(((a0 >> 4) & km2) | (((tmp >> 4) & km1) << 4)),
                               (int)(((a1 >> 4) & km2) | (((tmp >> 6) & km1) << 4)));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

/* Bit `from` of every byte moved to bit `to` (16-bit shifts: bits that
 * cross into a neighbouring byte are masked off by the caller; valid for
 * to - from <= 4 and from - to <= 7 - to). */
static inline __m256i move_bit(__m256i v, int from, int to) {
    return from < to ? _mm256_slli_epi16(v, to - from) : _mm256_srli_epi16(v, from - to);
}

/* 16 bytes of nibbles -> 32 bytes in element order: low nibbles, then high. */
static inline __m256i nibbles32(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(w, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, byte j = 0x10 where bit j is set (the fifth bits). */
static inline __m256i fifth_bits32(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL,
                                              0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Block kernels: sd is the weight block's d on every lane, sm its second
 * f16 (Q4_1/Q5_1's min); d8/ds8/s4 the activations' per-lane values. The
 * min term goes to its own accumulator: two dependent FMAs per block on
 * one register made these kernels wait on FMA latency. */
static inline void blk_q4_0(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 sd, __m256 sm, __m256 *acc, __m256 *accm) {
    (void)ds8;
    (void)sm;
    __m256i p = mul_sum_us8(nibbles32(b + 2), _mm256_loadu_si256((const __m256i *)x));
    p = _mm256_sub_epi32(p, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)s4), 3));
    (void)accm;
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(sd, _mm256_loadu_ps(d8)), *acc);
}

static inline void blk_q4_1(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 sd, __m256 sm, __m256 *acc, __m256 *accm) {
    (void)s4;
    __m256i p = mul_sum_us8(nibbles32(b + 4), _mm256_loadu_si256((const __m256i *)x));
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(sd, _mm256_loadu_ps(d8)), *acc);
    *accm = _mm256_fmadd_ps(sm, _mm256_loadu_ps(ds8), *accm);
}

static inline void blk_q5_0(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 sd, __m256 sm, __m256 *acc, __m256 *accm) {
    (void)ds8;
    (void)sm;
    __m256i w = _mm256_or_si256(nibbles32(b + 6), fifth_bits32(rd32(b + 2)));
    __m256i p = mul_sum_us8(w, _mm256_loadu_si256((const __m256i *)x));
    p = _mm256_sub_epi32(p, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)s4), 4));
    (void)accm;
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(sd, _mm256_loadu_ps(d8)), *acc);
}

static inline void blk_q5_1(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 sd, __m256 sm, __m256 *acc, __m256 *accm) {
    (void)s4;
    __m256i w = _mm256_or_si256(nibbles32(b + 8), fifth_bits32(rd32(b + 4)));
    __m256i p = mul_sum_us8(w, _mm256_loadu_si256((const __m256i *)x));
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(sd, _mm256_loadu_ps(d8)), *acc);
    *accm = _mm256_fmadd_ps(sm, _mm256_loadu_ps(ds8), *accm);
}

static inline void blk_q8_0(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 sd, __m256 sm, __m256 *acc, __m256 *accm) {
    (void)s4;
    (void)ds8;
    (void)sm;
    __m256i w = _mm256_loadu_si256((const __m256i *)(b + 2));
    __m256i sx = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)x), w);
    __m256i p = mul_sum_us8(_mm256_abs_epi8(w), sx);
    (void)accm;
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(sd, _mm256_loadu_ps(d8)), *acc);
}

/* The first two f16 of each of 4 blocks (d, then the min or whatever
 * follows d): d0 m0 d1 m1 d2 m2 d3 m3 as floats, one conversion for all. */
static inline __m256 first_f16s_of_4(const uint8_t *b, int bb) {
    return _mm256_cvtph_ps(_mm_setr_epi32((int)rd32(b), (int)rd32(b + bb), (int)rd32(b + 2 * bb),
                                          (int)rd32(b + 3 * bb)));
}

/* One token of a 32-block type over a row: 4 blocks per step sharing one
 * scale conversion, each into its own accumulators (independent FMA
 * chains), then the last nb % 4 blocks one by one. */
#define DOT32_1(NAME, BB)                                                                      \
    static float dot1_##NAME(const uint8_t *row, int nb, const act_t *a, int t) {              \
        size_t l0 = (size_t)t * (a->cols / 4);                                                 \
        const int8_t *x = a->q + (size_t)t * a->cols;                                          \
        const int32_t *s4 = a->s4 + l0;                                                        \
        const float *d8 = a->d8 + l0, *ds8 = a->ds8 + l0;                                      \
        __m256 acc[4], accm[4];                                                                \
        for (int j = 0; j < 4; j++) acc[j] = accm[j] = _mm256_setzero_ps();                    \
        int i = 0;                                                                             \
        for (; i + 4 <= nb; i += 4) {                                                          \
            __m256 f = first_f16s_of_4(row + (size_t)i * BB, BB);                             \
            for (int j = 0; j < 4; j++) {                                                      \
                __m256 sd = _mm256_permutevar8x32_ps(f, _mm256_set1_epi32(2 * j));             \
                __m256 sm = _mm256_permutevar8x32_ps(f, _mm256_set1_epi32(2 * j + 1));         \
                blk_##NAME(row + (size_t)(i + j) * BB, x + 32 * (i + j), s4 + 8 * (i + j),     \
                           d8 + 8 * (i + j), ds8 + 8 * (i + j), sd, sm, &acc[j], &accm[j]);    \
            }                                                                                  \
        }                                                                                      \
        for (; i < nb; i++) {                                                                  \
            const uint8_t *b = row + (size_t)i * BB;                                           \
            blk_##NAME(b, x + 32 * i, s4 + 8 * i, d8 + 8 * i, ds8 + 8 * i,                     \
                       _mm256_set1_ps(h2f(b)), _mm256_set1_ps(h2f(b + 2)), &acc[0], &accm[0]); \
        }                                                                                      \
        __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));  \
        __m256 m = _mm256_add_ps(_mm256_add_ps(accm[0], accm[1]), _mm256_add_ps(accm[2], accm[3])); \
        return hsum256(_mm256_add_ps(s, m));                                                   \
    }

#endif
