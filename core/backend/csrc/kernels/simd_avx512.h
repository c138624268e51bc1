/* AVX-512 building blocks shared by simd_avx512.c and simd_k_avx512.c,
 * compiled under each file's target pragma. */
#ifndef CHORD_SIMD_AVX512_H
#define CHORD_SIMD_AVX512_H

#include "simd_x86.h"

static inline __m512i mul_sum_us8_512(__m512i u, __m512i s) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* int16 lane indices: register c of a super-block covers sub-blocks
 * per_reg * c .. per_reg * (c + 1) - 1, each over 32 / per_reg int16 lanes. */
static inline __m512i scale_index(int c, int per_reg) {
    int16_t idx[32];
    for (int l = 0; l < 32; l++) idx[l] = (int16_t)(per_reg * c + l / (32 / per_reg));
    return _mm512_loadu_si512(idx);
}

#endif
