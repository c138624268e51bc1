/* AVX2 one-token kernels of the k-quants (Q8_K activations): the
 * arithmetic of simd_k_avx512.c on 32-element runs, four rows at a time
 * through the same driver (sb_driver.h). A run's two per-16 scales (or its
 * one per-32 scale) reach its int16 lanes by a byte shuffle of the scales
 * widened to int16. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "simd_x86.h"

/* For run k (0..3) of a 128-element half: int16 scales of its sub-blocks
 * 2k (low 128-bit lane) and 2k + 1 (high lane), from the half's 8 scales
 * as int16 in both lanes. */
static inline __m256i scale_pair(__m256i half_scales, int k) {
    const int j = 4 * k; /* byte offset of scale 2k */
    __m128i lo = _mm_setr_epi8(j, j + 1, j, j + 1, j, j + 1, j, j + 1, j, j + 1, j, j + 1, j, j + 1, j, j + 1);
    __m128i hi = _mm_add_epi8(lo, _mm_set1_epi8(2));
    return _mm256_shuffle_epi8(half_scales, _mm256_setr_m128i(lo, hi));
}

/* The 8 int16 scales of half h (0, 1) of 16, in both 128-bit lanes. */
static inline __m256i half_scales(__m256i sc16, int h) {
    return _mm256_permute4x64_epi64(sc16, h ? 0xEE : 0x44);
}

/* One row's super-block against both levels of quants (x, x2 and their
 * per-16 sums bs, bs2): *is / *js get the sub-block-scaled products
 * (offsets already off), *ms / *ns the mins times the quant sums, as int32
 * lanes. */
#define SB_ARGS                                                                                \
    const uint8_t *row, const int8_t *x, const int8_t *x2, const int16_t *bs, const int16_t *bs2, \
        __m256i *is, __m256i *js, __m256i *ms, __m256i *ns

/* acc += the run's products with both levels (w: 32 unsigned weights at
 * element e of the super-block, sc: its int16 scales). */
#define RUN2(w, e, sc)                                                                         \
    {                                                                                          \
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)(x + (e)))), sc)); \
        jsum = _mm256_add_epi32(jsum, _mm256_madd_epi16(_mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)(x2 + (e)))), sc)); \
    }

#define SB_K45(NAME, QS, FIVE)                                                                 \
    static inline void sb_##NAME(SB_ARGS) {                                                    \
        const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);               \
        uint64_t sc, mn;                                                                       \
        k4_unpack_scales(row + 4, &sc, &mn);                                                   \
        uint8_t s[8];                                                                          \
        memcpy(s, &sc, 8);                                                                     \
        __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 16));                          \
        (void)qh;                                                                              \
        __m256i isum = _mm256_setzero_si256(), jsum = _mm256_setzero_si256();                  \
        for (int c = 0; c < 4; c++) {                                                          \
            __m256i q = _mm256_loadu_si256((const __m256i *)(row + QS + 32 * c));              \
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4); \
            if (FIVE) {                                                                        \
                lo = _mm256_or_si256(lo, _mm256_and_si256(move_bit(qh, 2 * c, 4), m10));        \
                hi = _mm256_or_si256(hi, _mm256_and_si256(move_bit(qh, 2 * c + 1, 4), m10));    \
            }                                                                                  \
            RUN2(lo, 64 * c, _mm256_set1_epi16(s[2 * c]))                                      \
            RUN2(hi, 64 * c + 32, _mm256_set1_epi16(s[2 * c + 1]))                             \
        }                                                                                      \
        *is = isum;                                                                            \
        *js = jsum;                                                                            \
        *ms = k4_min_sums(mn, bs);                                                             \
        *ns = k4_min_sums(mn, bs2);                                                            \
    }

SB_K45(q4_k, 16, 0)
SB_K45(q5_k, 48, 1)

static inline void sb_q6_k(SB_ARGS) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
    __m256i isum = _mm256_setzero_si256(), jsum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i hs = half_scales(sc16, h);
        __m256i ql0 = _mm256_loadu_si256((const __m256i *)(row + 64 * h));
        __m256i ql1 = _mm256_loadu_si256((const __m256i *)(row + 64 * h + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));
        /* each run built just before its products: all four at once spilled */
#define Q6_RUN(k, LOW, HIGH)                                                                   \
        {                                                                                      \
            __m256i q = _mm256_or_si256(_mm256_and_si256(LOW, m4), _mm256_and_si256(HIGH, m30)); \
            RUN2(q, 128 * h + 32 * k, scale_pair(hs, k))                                       \
        }
        Q6_RUN(0, ql0, _mm256_slli_epi16(qh, 4))
        Q6_RUN(1, ql1, _mm256_slli_epi16(qh, 2))
        Q6_RUN(2, _mm256_srli_epi16(ql0, 4), qh)
        Q6_RUN(3, _mm256_srli_epi16(ql1, 4), _mm256_srli_epi16(qh, 2))
#undef Q6_RUN
    }
    /* the stored 6-bit values are q + 32 */
    __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
    __m256i off2 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs2), sc16);
    *is = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 5));
    *js = _mm256_sub_epi32(jsum, _mm256_slli_epi32(off2, 5));
    *ms = *ns = _mm256_setzero_si256();
}

/* Q2_K / Q3_K run (h, k): bits 2k, 2k + 1 of the 32 bytes of half h. */
static inline __m256i plane32(const uint8_t *qs, int h, int k) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
    return _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), _mm256_set1_epi8(3));
}

static inline void sb_q2_k(SB_ARGS) {
    __m128i sb = _mm_loadu_si128((const __m128i *)row); /* scale low nibble, min high */
    __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0F)));
    __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0F)));
    __m256i isum = _mm256_setzero_si256(), jsum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i hs = half_scales(sc16, h);
        for (int k = 0; k < 4; k++) RUN2(plane32(row + 16, h, k), 128 * h + 32 * k, scale_pair(hs, k))
    }
    *is = isum;
    *js = jsum;
    *ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), mn16);
    *ns = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs2), mn16);
}

static inline void sb_q3_k(SB_ARGS) {
    const __m256i m4 = _mm256_set1_epi8(4);
    __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales_v(row + 96));
    __m256i hm = _mm256_loadu_si256((const __m256i *)row);
    __m256i isum = _mm256_setzero_si256(), jsum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i hs = half_scales(sc16, h);
        for (int k = 0; k < 4; k++) {
            __m256i w = _mm256_or_si256(plane32(row + 32, h, k), _mm256_and_si256(move_bit(hm, 4 * h + k, 2), m4));
            RUN2(w, 128 * h + 32 * k, scale_pair(hs, k))
        }
    }
    /* the values with their third bit are q + 4 */
    __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
    __m256i off2 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs2), sc16);
    *is = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 2));
    *js = _mm256_sub_epi32(jsum, _mm256_slli_epi32(off2, 2));
    *ms = *ns = _mm256_setzero_si256();
}

static inline void store_lanes4(float *p, unsigned keep, __m128 v) {
    const __m128i lane = _mm_setr_epi32(1, 2, 4, 8);
    __m128i m = _mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32((int)keep), lane), lane);
    _mm_maskstore_ps(p, m, v);
}

#define K_SETUP
#define K_ROW(NAME, r) sb_##NAME(blk[r], x, x2, bs, bs2, &is##r, &js##r, &ms##r, &ns##r);
#define K_PAIR __m256i
#define K_PAIR32 pair32_256
#define K_FINISH4 finish4_256
#define K_STORE(ptr, keep, acc) store_lanes4(ptr, keep, acc)
#define K_DECL __m256i is0, is1, is2, is3, js0, js1, js2, js3, ms0, ms1, ms2, ms3, ns0, ns1, ns2, ns3;
#include "sb_driver.h"

MM_K(q2_k, 84, 80, 1)
MM_K(q3_k, 110, 108, 0)
MM_K(q4_k, 144, 0, 1)
MM_K(q5_k, 176, 0, 1)
MM_K(q6_k, 210, 208, 0)

void simd_k_avx2(mm_fn *small) {
    small[W_Q2_K] = mm_q2_k;
    small[W_Q3_K] = mm_q3_k;
    small[W_Q4_K] = mm_q4_k;
    small[W_Q5_K] = mm_q5_k;
    small[W_Q6_K] = mm_q6_k;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_k_avx2_unused;
#endif
