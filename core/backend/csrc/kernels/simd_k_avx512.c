/* AVX-512 one-token kernels of the k-quants (Q8_K activations). Each
 * 64-byte register holds 64 elements of a super-block in element order,
 * unsigned (0..3, 0..7, 0..15, 0..31, 0..63); maddubs pairs them with the
 * activations and madd applies the integer sub-block scales (vpermw spreads
 * them over their lanes). Offsets (Q3_K 4, Q6_K 32) and mins come off once
 * per super-block through the activations' per-16 sums. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif

#include "simd_avx512.h"

#define K_POINTERS                                                                             \
    const int8_t *x = a->q + (size_t)t * a->cols;                                              \
    const float *xd = a->d + (size_t)t * nb;                                                   \
    const int16_t *bs = a->sum + (size_t)t * (a->cols / 16)

static inline __m512i zext256(__m256i v) { return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0); }

/* Q4_K and Q5_K: 64 elements = one 32-byte group of nibbles, low then high. */
#define DOT_K45(NAME, BB, QS, FIVE)                                                            \
    static float dot_##NAME(const uint8_t *row, int nb, const act_t *a, int t) {               \
        const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);               \
        __m512i ix[4];                                                                         \
        for (int c = 0; c < 4; c++) ix[c] = scale_index(c, 2);                                 \
        K_POINTERS;                                                                            \
        __m512 acc = _mm512_setzero_ps();                                                      \
        __m256 accm = _mm256_setzero_ps();                                                     \
        for (int i = 0; i < nb; i++, row += BB, x += QK_K, bs += 16) {                         \
            uint64_t sc, mn;                                                                   \
            k4_unpack_scales(row + 4, &sc, &mn);                                               \
            __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc))); \
            __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 16));                      \
            (void)qh;                                                                          \
            __m512i isum = _mm512_setzero_si512();                                             \
            for (int c = 0; c < 4; c++) {                                                      \
                __m256i q = _mm256_loadu_si256((const __m256i *)(row + QS + 32 * c));          \
                __m512i w = _mm512_and_si512(join256(q, _mm256_srli_epi16(q, 4)), m4);         \
                if (FIVE)                                                                      \
                    w = _mm512_or_si512(w, _mm512_and_si512(join256(move_bit(qh, 2 * c, 4),    \
                                                                    move_bit(qh, 2 * c + 1, 4)), m10)); \
                __m512i p = _mm512_maddubs_epi16(w, _mm512_loadu_si512(x + 64 * c));           \
                isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, _mm512_permutexvar_epi16(ix[c], s16))); \
            }                                                                                  \
            float dx = xd[i];                                                                  \
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(row) * dx), acc); \
            accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k4_min_sums(mn, bs)),                   \
                                   _mm256_set1_ps(h2f(row + 2) * dx), accm);                   \
        }                                                                                      \
        return _mm512_reduce_add_ps(acc) - hsum256(accm);                                      \
    }

DOT_K45(q4_k, 144, 16, 0)
DOT_K45(q5_k, 176, 48, 1)

static float dot_q6_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512i ix[4];
    for (int c = 0; c < 4; c++) ix[c] = scale_index(c, 4);
    K_POINTERS;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++, row += 210, x += QK_K, bs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
        __m512i s16 = _mm512_castsi256_si512(sc16);
        __m512i isum = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            /* ql: low nibbles of bytes 0-63 are elements 0-63, high nibbles 64-127;
             * qh bits 2k, 2k+1 of byte l are bits 4-5 of element l + 32k */
            __m512i ql = _mm512_loadu_si512(row + 64 * h);
            __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));
            __m512i qh2 = join256(qh, _mm256_srli_epi16(qh, 2));
            __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_slli_epi16(qh2, 4), m30));
            __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(qh2, m30));
            __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(x + 128 * h));
            __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(x + 128 * h + 64));
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pa, _mm512_permutexvar_epi16(ix[2 * h], s16)));
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pb, _mm512_permutexvar_epi16(ix[2 * h + 1], s16)));
        }
        /* the stored 6-bit values are q + 32 */
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
        isum = _mm512_sub_epi32(isum, zext256(_mm256_slli_epi32(off, 5)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(row + 208) * xd[i]), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Q2_K / Q3_K: byte l of each 32-byte half holds 2-bit planes of elements
 * l, l + 32, l + 64, l + 96 of that half; Q3_K's third bit of element
 * 32k + l (k = 0..7) is bit k of hmask byte l. Register c = elements
 * 64c .. 64c + 63: half c / 2, planes 2 (c % 2) and 2 (c % 2) + 1. */
static inline __m512i planes64(const uint8_t *qs, int c) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 2)));
    int j = 2 * (c % 2);
    return _mm512_and_si512(join256(_mm256_srli_epi16(q, 2 * j), _mm256_srli_epi16(q, 2 * j + 2)),
                            _mm512_set1_epi8(3));
}

static float dot_q2_k(const uint8_t *row, int nb, const act_t *a, int t) {
    __m512i ix[4];
    for (int c = 0; c < 4; c++) ix[c] = scale_index(c, 4);
    K_POINTERS;
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 84, x += QK_K, bs += 16) {
        __m128i sb = _mm_loadu_si128((const __m128i *)row); /* scale low nibble, min high */
        __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0F)));
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0F)));
        __m512i s16 = _mm512_castsi256_si512(sc16), isum = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i p = _mm512_maddubs_epi16(planes64(row + 16, c), _mm512_loadu_si512(x + 64 * c));
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, _mm512_permutexvar_epi16(ix[c], s16)));
        }
        __m256i msum = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), mn16);
        float dx = xd[i];
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(row + 80) * dx), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(h2f(row + 82) * dx), accm);
    }
    return _mm512_reduce_add_ps(acc) - hsum256(accm);
}

static float dot_q3_k(const uint8_t *row, int nb, const act_t *a, int t) {
    __m512i ix[4];
    for (int c = 0; c < 4; c++) ix[c] = scale_index(c, 4);
    const __m512i m4 = _mm512_set1_epi8(4);
    K_POINTERS;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++, row += 110, x += QK_K, bs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales_v(row + 96));
        __m512i s16 = _mm512_castsi256_si512(sc16), isum = _mm512_setzero_si512();
        __m256i hm = _mm256_loadu_si256((const __m256i *)row);
        for (int c = 0; c < 4; c++) {
            __m512i hb = join256(move_bit(hm, 2 * c, 2), move_bit(hm, 2 * c + 1, 2));
            __m512i w = _mm512_or_si512(planes64(row + 32, c), _mm512_and_si512(hb, m4));
            __m512i p = _mm512_maddubs_epi16(w, _mm512_loadu_si512(x + 64 * c));
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, _mm512_permutexvar_epi16(ix[c], s16)));
        }
        /* the values with their third bit are q + 4 */
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
        isum = _mm512_sub_epi32(isum, zext256(_mm256_slli_epi32(off, 2)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(row + 108) * xd[i]), acc);
    }
    return _mm512_reduce_add_ps(acc);
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

void simd_k_avx512(mm_fn *small) {
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
typedef int simd_k_avx512_unused;
#endif
