/* AVX-512 one-token kernels of the k-quants (Q8_K activations), included by
 * simd_avx512.c twice: without VNNI and with it (dpwssd for madd + add). Each
 * 64-byte register holds 64 elements of a super-block in element order,
 * unsigned (0..3, 0..7, 0..15, 0..31, 0..63); maddubs pairs them with the
 * activations and madd applies the integer sub-block scales (vpermw spreads
 * them over their lanes). Offsets (Q3_K 4, Q6_K 32) and mins come off once
 * per super-block through the activations' per-16 sums.
 *
 * Four rows at a time: each row's super-block gives int32 lanes (products,
 * and mins), sum_rows4 makes them exact integers per row, and the floats
 * follow kernels.h's order on four lanes, one row each (see sb_driver.h). */


static inline __m512i zext256(__m256i v) { return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0); }

/* The int16 lane indices of scale_index, built once. */
typedef struct {
    __m512i per2[4], per4[4];
} k_index;

static inline k_index k_indexes(void) {
    k_index k;
    for (int c = 0; c < 4; c++) {
        k.per2[c] = scale_index(c, 2);
        k.per4[c] = scale_index(c, 4);
    }
    return k;
}

/* One row's super-block against both levels of quants (x, x2 and their
 * per-16 sums bs, bs2): *is / *js get the sub-block-scaled products
 * (offsets already off), *ms / *ns the mins times the quant sums, as int32
 * lanes. */
#define SB_ARGS                                                                                \
    const uint8_t *row, const int8_t *x, const int8_t *x2, const int16_t *bs, const int16_t *bs2, \
        const k_index *ki, __m512i *is, __m512i *js, __m256i *ms, __m256i *ns

#define SB_K45(NAME, QS, FIVE)                                                                 \
    static inline void sb_##NAME(SB_ARGS) {                                                    \
        const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);               \
        uint64_t sc, mn;                                                                       \
        k4_unpack_scales(row + 4, &sc, &mn);                                                   \
        __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc))); \
        __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 16));                          \
        (void)qh;                                                                              \
        __m512i isum = _mm512_setzero_si512(), jsum = _mm512_setzero_si512();                  \
        for (int c = 0; c < 4; c++) {                                                          \
            __m256i q = _mm256_loadu_si256((const __m256i *)(row + QS + 32 * c));              \
            __m512i w = _mm512_and_si512(join256(q, _mm256_srli_epi16(q, 4)), m4);             \
            if (FIVE)                                                                          \
                w = _mm512_or_si512(w, _mm512_and_si512(join256(move_bit(qh, 2 * c, 4),        \
                                                                move_bit(qh, 2 * c + 1, 4)), m10)); \
            __m512i scl = _mm512_permutexvar_epi16(ki->per2[c], s16);                          \
            isum = dot_i16_acc_512(isum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(x + 64 * c)), scl); \
            jsum = dot_i16_acc_512(jsum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(x2 + 64 * c)), scl); \
        }                                                                                      \
        *is = isum;                                                                            \
        *js = jsum;                                                                            \
        *ms = k4_min_sums(mn, bs);                                                             \
        *ns = k4_min_sums(mn, bs2);                                                            \
    }

SB_K45(q4_k, 16, 0)
SB_K45(q5_k, 48, 1)

static inline void sb_q6_k(SB_ARGS) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m33 = _mm512_set1_epi8(0x33);
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
    __m512i s16 = _mm512_castsi256_si512(sc16);
    __m512i isum = _mm512_setzero_si512(), jsum = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        /* ql: low nibbles of bytes 0-63 are elements 0-63, high nibbles 64-127;
         * qh bits 2k, 2k+1 of byte l are bits 4-5 of element l + 32k */
        __m512i ql = _mm512_loadu_si512(row + 64 * h);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));
        /* bits 4-5 of each value from qh2 (its bits 0-1, or 4-5), the rest
         * from ql: one bitwise select (vpternlog, 0xCA = m ? ql : qh) each */
        __m512i qh2 = _mm512_and_si512(join256(qh, _mm256_srli_epi16(qh, 2)), m33);
        __m512i qa = _mm512_ternarylogic_epi32(m4, ql, _mm512_slli_epi16(qh2, 4), 0xCA);
        __m512i qb = _mm512_ternarylogic_epi32(m4, _mm512_srli_epi16(ql, 4), qh2, 0xCA);
        __m512i sa = _mm512_permutexvar_epi16(ki->per4[2 * h], s16);
        __m512i sb = _mm512_permutexvar_epi16(ki->per4[2 * h + 1], s16);
        isum = dot_i16_acc_512(isum, _mm512_maddubs_epi16(qa, _mm512_loadu_si512(x + 128 * h)), sa);
        isum = dot_i16_acc_512(isum, _mm512_maddubs_epi16(qb, _mm512_loadu_si512(x + 128 * h + 64)), sb);
        jsum = dot_i16_acc_512(jsum, _mm512_maddubs_epi16(qa, _mm512_loadu_si512(x2 + 128 * h)), sa);
        jsum = dot_i16_acc_512(jsum, _mm512_maddubs_epi16(qb, _mm512_loadu_si512(x2 + 128 * h + 64)), sb);
    }
    /* the stored 6-bit values are q + 32 */
    __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
    __m256i off2 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs2), sc16);
    *is = _mm512_sub_epi32(isum, zext256(_mm256_slli_epi32(off, 5)));
    *js = _mm512_sub_epi32(jsum, zext256(_mm256_slli_epi32(off2, 5)));
    *ms = *ns = _mm256_setzero_si256();
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

static inline void sb_q2_k(SB_ARGS) {
    __m128i sb = _mm_loadu_si128((const __m128i *)row); /* scale low nibble, min high */
    __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0F)));
    __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0F)));
    __m512i s16 = _mm512_castsi256_si512(sc16), isum = _mm512_setzero_si512(), jsum = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        __m512i w = planes64(row + 16, c), scl = _mm512_permutexvar_epi16(ki->per4[c], s16);
        isum = dot_i16_acc_512(isum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(x + 64 * c)), scl);
        jsum = dot_i16_acc_512(jsum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(x2 + 64 * c)), scl);
    }
    *is = isum;
    *js = jsum;
    *ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), mn16);
    *ns = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs2), mn16);
}

static inline void sb_q3_k(SB_ARGS) {
    const __m512i m4 = _mm512_set1_epi8(4);
    __m256i sc16 = _mm256_cvtepi8_epi16(q3k_scales_v(row + 96));
    __m512i s16 = _mm512_castsi256_si512(sc16), isum = _mm512_setzero_si512(), jsum = _mm512_setzero_si512();
    __m256i hm = _mm256_loadu_si256((const __m256i *)row);
    for (int c = 0; c < 4; c++) {
        __m512i hb = join256(move_bit(hm, 2 * c, 2), move_bit(hm, 2 * c + 1, 2));
        __m512i w = _mm512_or_si512(planes64(row + 32, c), _mm512_and_si512(hb, m4));
        __m512i scl = _mm512_permutexvar_epi16(ki->per4[c], s16);
        isum = dot_i16_acc_512(isum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(x + 64 * c)), scl);
        jsum = dot_i16_acc_512(jsum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(x2 + 64 * c)), scl);
    }
    /* the values with their third bit are q + 4 */
    __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
    __m256i off2 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs2), sc16);
    *is = _mm512_sub_epi32(isum, zext256(_mm256_slli_epi32(off, 2)));
    *js = _mm512_sub_epi32(jsum, zext256(_mm256_slli_epi32(off2, 2)));
    *ms = *ns = _mm256_setzero_si256();
}

/* sum_rows4 of simd_x86.h on 16 lanes. */
static inline __m512i pair32_512(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}

static inline __m128i finish4_512(__m512i w01, __m512i w23) {
    __m512i x = _mm512_add_epi32(_mm512_unpacklo_epi64(w01, w23), _mm512_unpackhi_epi64(w01, w23));
    __m256i y = _mm256_add_epi32(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

#define K_SETUP const k_index ki = k_indexes();
#define K_ROW(NAME, r) sb_##NAME(blk[r], x, x2, bs, bs2, &ki, &is##r, &js##r, &ms##r, &ns##r);
#define K_PAIR __m512i
#define K_PAIR32 pair32_512
#define K_FINISH4 finish4_512
#define K_STORE(ptr, keep, acc) _mm_mask_storeu_ps(ptr, (__mmask8)(keep), acc)
#define K_DECL __m512i is0, is1, is2, is3, js0, js1, js2, js3; __m256i ms0, ms1, ms2, ms3, ns0, ns1, ns2, ns3;
#include "sb_driver.h"

MM_K(q2_k, 84, 80, 1)
MM_K(q3_k, 110, 108, 0)
MM_K(q4_k, 144, 0, 1)
MM_K(q5_k, 176, 0, 1)
MM_K(q6_k, 210, 208, 0)

static void fillk(mm_fn *small) {
    small[W_Q2_K] = mm_q2_k;
    small[W_Q3_K] = mm_q3_k;
    small[W_Q4_K] = mm_q4_k;
    small[W_Q5_K] = mm_q5_k;
    small[W_Q6_K] = mm_q6_k;
}
