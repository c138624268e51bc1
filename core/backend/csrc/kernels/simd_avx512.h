/* AVX-512 building blocks of the one-token kernels (simd32_avx512.h,
 * simdk_avx512.h), compiled by simd_avx512.c and simd_avx512_vnni.c under
 * their target pragmas; SIMD_VNNI picks the products. */
#ifndef CHORD_SIMD_AVX512_H
#define CHORD_SIMD_AVX512_H

#include "simd_x86.h"

#ifndef SIMD_VNNI
#error "define SIMD_VNNI (0 or 1) before including simd_avx512.h"
#endif

/* float(256 * i1 + i2) per lane, the exact value rounded once (kernels.h's
 * two_level; exact in double): the tile and register-tile kernels' scale step. */
static inline __m512 two_level16(__m512i i1, __m512i i2) {
    const __m512d k = _mm512_set1_pd(256.0);
    __m512d lo = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(i1)), k,
                                 _mm512_cvtepi32_pd(_mm512_castsi512_si256(i2)));
    __m512d hi = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(i1, 1)), k,
                                 _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(i2, 1)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

/* u8 x s8, 4 products summed per int32 lane; and acc + int16 pair products. */
#if SIMD_VNNI
static inline __m512i dot_us8_512(__m512i u, __m512i s) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
}

/* u against both levels of quants: sums of u * (256 * s + s2) per 4 elements. */
static inline __m512i dot2_us8_512(__m512i u, __m512i s, __m512i s2) {
    __m512i r = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s), 8);
    return _mm512_dpbusd_epi32(r, u, s2);
}

static inline __m512i dot_i16_acc_512(__m512i acc, __m512i a, __m512i b) {
    return _mm512_dpwssd_epi32(acc, a, b);
}
#else
static inline __m512i dot_us8_512(__m512i u, __m512i s) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

static inline __m512i dot2_us8_512(__m512i u, __m512i s, __m512i s2) {
    __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(256));
    return _mm512_add_epi32(p, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s2), _mm512_set1_epi16(1)));
}

static inline __m512i dot_i16_acc_512(__m512i acc, __m512i a, __m512i b) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
#endif

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
