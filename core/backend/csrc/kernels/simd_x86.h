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

/* Per-lane d_w * d_x of one block. */
static inline __m256 scale8(const uint8_t *dw, const float *d8) {
    return _mm256_mul_ps(_mm256_set1_ps(h2f(dw)), _mm256_loadu_ps(d8));
}

static inline __m256 blk_q4_0(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 acc) {
    (void)ds8;
    __m256i p = mul_sum_us8(nibbles32(b + 2), _mm256_loadu_si256((const __m256i *)x));
    p = _mm256_sub_epi32(p, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)s4), 3));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale8(b, d8), acc);
}

static inline __m256 blk_q4_1(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 acc) {
    (void)s4;
    __m256i p = mul_sum_us8(nibbles32(b + 4), _mm256_loadu_si256((const __m256i *)x));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale8(b, d8), acc);
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(b + 2)), _mm256_loadu_ps(ds8), acc);
}

static inline __m256 blk_q5_0(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 acc) {
    (void)ds8;
    __m256i w = _mm256_or_si256(nibbles32(b + 6), fifth_bits32(rd32(b + 2)));
    __m256i p = mul_sum_us8(w, _mm256_loadu_si256((const __m256i *)x));
    p = _mm256_sub_epi32(p, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)s4), 4));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale8(b, d8), acc);
}

static inline __m256 blk_q5_1(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 acc) {
    (void)s4;
    __m256i w = _mm256_or_si256(nibbles32(b + 8), fifth_bits32(rd32(b + 4)));
    __m256i p = mul_sum_us8(w, _mm256_loadu_si256((const __m256i *)x));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale8(b, d8), acc);
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(b + 2)), _mm256_loadu_ps(ds8), acc);
}

static inline __m256 blk_q8_0(const uint8_t *b, const int8_t *x, const int32_t *s4, const float *d8,
                              const float *ds8, __m256 acc) {
    (void)s4;
    (void)ds8;
    __m256i w = _mm256_loadu_si256((const __m256i *)(b + 2));
    __m256i sx = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)x), w);
    __m256i p = mul_sum_us8(_mm256_abs_epi8(w), sx);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale8(b, d8), acc);
}

/* One token of a 32-block type: the block kernel over a row. */
#define DOT32_1(NAME, BB)                                                                      \
    static float dot1_##NAME(const uint8_t *row, int nb, const act_t *a, int t) {              \
        size_t l0 = (size_t)t * (a->cols / 4);                                                 \
        const int8_t *x = a->q + (size_t)t * a->cols;                                          \
        __m256 acc = _mm256_setzero_ps();                                                      \
        for (int i = 0; i < nb; i++)                                                           \
            acc = blk_##NAME(row + (size_t)i * BB, x + 32 * i, a->s4 + l0 + 8 * i,             \
                             a->d8 + l0 + 8 * i, a->ds8 + l0 + 8 * i, acc);                    \
        return hsum256(acc);                                                                   \
    }

#endif
