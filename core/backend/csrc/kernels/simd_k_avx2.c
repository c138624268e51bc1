/* AVX2 one-token kernels of the k-quants (Q8_K activations): the
 * arithmetic of simd_k_avx512.c on 32-element runs. A run's two per-16
 * scales (or its one per-32 scale) reach its int16 lanes by a byte shuffle
 * of the scales widened to int16. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "simd_x86.h"

#define K_POINTERS                                                                             \
    const int8_t *x = a->q + (size_t)t * a->cols;                                              \
    const float *xd = a->d + (size_t)t * nb;                                                   \
    const int16_t *bs = a->sum + (size_t)t * (a->cols / 16)

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

#define DOT_K45(NAME, BB, QS, FIVE)                                                            \
    static float dot_##NAME(const uint8_t *row, int nb, const act_t *a, int t) {               \
        const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);               \
        K_POINTERS;                                                                            \
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();                          \
        for (int i = 0; i < nb; i++, row += BB, x += QK_K, bs += 16) {                         \
            uint64_t sc, mn;                                                                   \
            k4_unpack_scales(row + 4, &sc, &mn);                                               \
            uint8_t s[8];                                                                      \
            memcpy(s, &sc, 8);                                                                 \
            __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 16));                      \
            (void)qh;                                                                          \
            __m256i isum = _mm256_setzero_si256();                                             \
            for (int c = 0; c < 4; c++) {                                                      \
                __m256i q = _mm256_loadu_si256((const __m256i *)(row + QS + 32 * c));          \
                __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4); \
                if (FIVE) {                                                                    \
                    lo = _mm256_or_si256(lo, _mm256_and_si256(move_bit(qh, 2 * c, 4), m10));    \
                    hi = _mm256_or_si256(hi, _mm256_and_si256(move_bit(qh, 2 * c + 1, 4), m10)); \
                }                                                                              \
                __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * c))); \
                __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * c + 32))); \
                plo = _mm256_madd_epi16(plo, _mm256_set1_epi16(s[2 * c]));                     \
                phi = _mm256_madd_epi16(phi, _mm256_set1_epi16(s[2 * c + 1]));                 \
                isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));                     \
            }                                                                                  \
            float dx = xd[i];                                                                  \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(row) * dx), acc); \
            accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k4_min_sums(mn, bs)),                   \
                                   _mm256_set1_ps(h2f(row + 2) * dx), accm);                   \
        }                                                                                      \
        return hsum256(_mm256_sub_ps(acc, accm));                                              \
    }

DOT_K45(q4_k, 144, 16, 0)
DOT_K45(q5_k, 176, 48, 1)

static float dot_q6_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    K_POINTERS;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 210, x += QK_K, bs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i hs = half_scales(sc16, h);
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(row + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(row + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(x + 128 * h + 32 * k)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair(hs, k)));
            }
        }
        /* the stored 6-bit values are q + 32 */
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(row + 208) * xd[i]), acc);
    }
    return hsum256(acc);
}

/* Q2_K / Q3_K run (h, k): bits 2k, 2k + 1 of the 32 bytes of half h. */
static inline __m256i plane32(const uint8_t *qs, int h, int k) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
    return _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), _mm256_set1_epi8(3));
}

static float dot_q2_k(const uint8_t *row, int nb, const act_t *a, int t) {
    K_POINTERS;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 84, x += QK_K, bs += 16) {
        __m128i sb = _mm_loadu_si128((const __m128i *)row); /* scale low nibble, min high */
        __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0F)));
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0F)));
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i hs = half_scales(sc16, h);
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(plane32(row + 16, h, k),
                                                 _mm256_loadu_si256((const __m256i *)(x + 128 * h + 32 * k)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair(hs, k)));
            }
        }
        __m256i msum = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), mn16);
        float dx = xd[i];
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(row + 80) * dx), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(h2f(row + 82) * dx), accm);
    }
    return hsum256(_mm256_sub_ps(acc, accm));
}

static float dot_q3_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m256i m4 = _mm256_set1_epi8(4);
    K_POINTERS;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 110, x += QK_K, bs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales_v(row + 96));
        __m256i hm = _mm256_loadu_si256((const __m256i *)row);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i hs = half_scales(sc16, h);
            for (int k = 0; k < 4; k++) {
                __m256i w = _mm256_or_si256(plane32(row + 32, h, k), _mm256_and_si256(move_bit(hm, 4 * h + k, 2), m4));
                __m256i p = _mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)(x + 128 * h + 32 * k)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair(hs, k)));
            }
        }
        /* the values with their third bit are q + 4 */
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 2));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(row + 108) * xd[i]), acc);
    }
    return hsum256(acc);
}

#define MM_K(NAME)                                                                             \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        int nb = a->cols / QK_K;                                                               \
        for (int r = r0; r < r1; r++)                                                          \
            for (int t = 0; t < a->T; t++) out[t * os + r] = dot_##NAME(w + (size_t)r * rb, nb, a, t); \
    }

MM_K(q2_k)
MM_K(q3_k)
MM_K(q4_k)
MM_K(q5_k)
MM_K(q6_k)

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
