/* x86 building blocks shared by the one-token kernels (simd_*.c), compiled
 * under each file's target pragma.
 *
 * Products are u8 x s8 pairs summed to int16 (maddubs) then to int32 per 4
 * elements (madd with ones or with integer sub-block scales). The unsigned
 * side is the weight: nibbles 0..15 (Q4_*), 0..31 (Q5_*) or |w| (Q8_0,
 * with x's sign flipped where w is negative), so no pair can saturate
 * int16. Lanes are summed to one exact integer per row and block before
 * any float arithmetic (kernels.h), by the shuffle trees below, which sum
 * several rows' lanes at once and leave one row per lane. */
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

/* The lanes of 8 rows (v0..v7, 8 int32 lanes each) summed: lane i = row i. */
static inline __m256i sum_rows8(__m256i v0, __m256i v1, __m256i v2, __m256i v3, __m256i v4,
                                __m256i v5, __m256i v6, __m256i v7) {
#define PAIR32(a, b) _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b))
#define PAIR64(a, b) _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b))
    __m256i x0 = PAIR64(PAIR32(v0, v1), PAIR32(v2, v3)); /* per 128-bit half: rows 0-3 */
    __m256i x1 = PAIR64(PAIR32(v4, v5), PAIR32(v6, v7));
#undef PAIR32
#undef PAIR64
    return _mm256_add_epi32(_mm256_permute2x128_si256(x0, x1, 0x20), _mm256_permute2x128_si256(x0, x1, 0x31));
}

/* The lanes of 4 rows summed (lane i = row i), in two steps: pair32 of
 * rows 0 and 1, of rows 2 and 3, then finish4. */
static inline __m256i pair32_256(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}

static inline __m128i finish4_256(__m256i w01, __m256i w23) {
    __m256i x = _mm256_add_epi32(_mm256_unpacklo_epi64(w01, w23), _mm256_unpackhi_epi64(w01, w23));
    return _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
}

/* float(256 * i1 + i2) of 4 lanes, the exact value rounded once (through
 * double, where it is exact), as two_level() in kernels.h. */
static inline __m128 two_level4(__m128i i1, __m128i i2) {
    __m256d v = _mm256_fmadd_pd(_mm256_cvtepi32_pd(i1), _mm256_set1_pd(256.0), _mm256_cvtepi32_pd(i2));
    return _mm256_cvtpd_ps(v);
}

/* d (at off) of the blocks of 4 rows, and with dmin at off + 2 for the
 * types that have one, as floats. */
static inline __m128 f16x4(const uint8_t *const p[4], size_t off) {
    __m128i h = _mm_setr_epi16((short)rd16(p[0] + off), (short)rd16(p[1] + off), (short)rd16(p[2] + off),
                               (short)rd16(p[3] + off), 0, 0, 0, 0);
    return _mm_cvtph_ps(h);
}

static inline void f16x4_pairs(const uint8_t *const p[4], size_t off, __m128 *d, __m128 *dmin) {
    __m128i h = _mm_setr_epi32((int)rd32(p[0] + off), (int)rd32(p[1] + off), (int)rd32(p[2] + off),
                               (int)rd32(p[3] + off));
    __m256 f = _mm256_permutevar8x32_ps(_mm256_cvtph_ps(h), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    *d = _mm256_castps256_ps128(f);
    *dmin = _mm256_extractf128_ps(f, 1);
}

/* The kernels read a group of rows block by block, all rows at once: 4-16
 * interleaved streams, which the hardware prefetchers do not follow from
 * DRAM (measured 2-4x slower than one row at a time). A group's rows are
 * one contiguous region, so while one group is computed the next one is
 * asked for in order, at the pace it will be consumed: each block step
 * asks for the next `per_step` bytes of it (rows x block bytes).
 * stream: the AVX-512 kernels' groups. On Zen 5 they are asked for with the
 * non-temporal hint, so that weights read once per step do not push the
 * KV cache and the activations out of L2 and L3 (SmolLM2: one-token decode
 * 214 -> 251 tok/s, a 4-row step's attention 1.16 -> 0.84 ms); on an Intel
 * Xeon the same hint made the products 2-2.6x slower (NTA lines skip L2,
 * and a group read one group ahead is evicted before use), so elsewhere
 * they go to L2 (T1), as before. The AVX2 kernels keep T0 (NTA measured
 * slower with them on Zen 5 too). chord_prefetch_nta: set by dispatch.c. */
extern int chord_prefetch_nta;
static inline void prefetch_next_group(const uint8_t *next, size_t per_step, int step, int stream) {
    size_t lo = per_step * (size_t)step, hi = lo + per_step;
    for (size_t o = lo & ~(size_t)63; o < hi; o += 64) {
        if (stream && chord_prefetch_nta) _mm_prefetch((const char *)next + o, _MM_HINT_NTA);
        else if (stream) _mm_prefetch((const char *)next + o, _MM_HINT_T1);
        else _mm_prefetch((const char *)next + o, _MM_HINT_T0);
    }
}

/* Row offsets of a group of n <= lanes rows from its first; lanes past n
 * repeat the last row (their results are computed and never stored). */
static inline void group_offsets(int32_t *off, int lanes, int n, size_t rb) {
    for (int i = 0; i < lanes; i++) off[i] = (int32_t)((size_t)(i < n ? i : n - 1) * rb);
}

/* float(256 * i1 + i2) for 8 lanes, the exact value rounded once (kernels.h's
 * two_level; exact in double): the tile and register-tile kernels' scale step. */
static inline __m256 two_level8(__m256i i1, __m256i i2) {
    const __m256d k = _mm256_set1_pd(256.0);
    __m256d lo = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(i1)), k,
                                 _mm256_cvtepi32_pd(_mm256_castsi256_si128(i2)));
    __m256d hi = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(i1, 1)), k,
                                 _mm256_cvtepi32_pd(_mm256_extracti128_si256(i2, 1)));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
}

#endif
