/* rtile_avx512.h's kernels over weights repacked at load (rows_pack.h),
 * included by simd_avx512_vnni.c after it: a block of 16 rows is a few
 * aligned loads instead of a transpose of 16-byte loads per call. Each
 * (row, token) meets the same integers and float operations in the same
 * order, so a row's bits do not depend on the layout either. */
#include "rows_pack.h"

RT_INLINE __m512i rtp_vec(const uint8_t *p, int j) { return _mm512_loadu_si512((const void *)(p + 64 * j)); }

RT_INLINE void rtp_quants4(const uint8_t *p, rt_blk32 *u) {
    const __m512i g[4] = {rtp_vec(p, 0), rtp_vec(p, 1), rtp_vec(p, 2), rtp_vec(p, 3)};
    rt_nibbles(g, u->w);
}

RT_INLINE void rtp_unpack_q4_0(const uint8_t *p, rt_blk32 *u) {
    rtp_quants4(p, u);
    u->d = rt_f16_lo(rtp_vec(p, 4));
    u->m = _mm512_setzero_ps();
}

RT_INLINE void rtp_unpack_q4_1(const uint8_t *p, rt_blk32 *u) {
    rtp_quants4(p, u);
    const __m512i h0 = rtp_vec(p, 4);
    u->d = rt_f16_lo(h0);
    u->m = rt_f16_hi(h0);
}

RT_INLINE void rtp_unpack_q5_0(const uint8_t *p, rt_blk32 *u) {
    rtp_quants4(p, u);
    const __m512i h0 = rtp_vec(p, 4), h1 = rtp_vec(p, 5);
    rt_fifth(_mm512_or_si512(_mm512_srli_epi32(h0, 16), _mm512_slli_epi32(h1, 16)), u->w);
    u->d = rt_f16_lo(h0);
    u->m = _mm512_setzero_ps();
}

RT_INLINE void rtp_unpack_q5_1(const uint8_t *p, rt_blk32 *u) {
    rtp_quants4(p, u);
    const __m512i h0 = rtp_vec(p, 4);
    rt_fifth(rtp_vec(p, 5), u->w);
    u->d = rt_f16_lo(h0);
    u->m = rt_f16_hi(h0);
}

RT_INLINE void rtp_unpack_q8_0(const uint8_t *p, rt_blk32 *u) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int k = 0; k < 8; k++) u->w[k] = _mm512_xor_si512(rtp_vec(p, k), flip);
    u->d = rt_f16_lo(rtp_vec(p, 8));
    u->m = _mm512_setzero_ps();
}

#define RT_UNPACK_PACKED(NAME, p, rb, u) rtp_unpack_##NAME(p, u)

/* PB: packed bytes per row and block (4 * rows_pack_vectors). The driver
 * gets whole groups only (rows_pack.h: matrices of whole groups; module.c
 * splits rows in multiples of 16). */
#define RTP32_ALL(NAME, PB, OFF, HASMIN)                                                       \
    RTW32_V(rtwp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 1)         \
    RTW32_V(rtwp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 2)         \
    RTW32_V(rtwp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 3)         \
    RTW32_V(rtwp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 4)         \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 1)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 2)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 3)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 4)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 5)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 6)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 7)           \
    RT32_V(rtp_##NAME, RT_UNPACK_PACKED, NAME, 16 * (PB), 16 * (PB), OFF, HASMIN, 8)           \
    static const rtw_fn rtwp_##NAME[RTW_TOKENS] = {rtwp_##NAME##_1, rtwp_##NAME##_2,           \
                                                  rtwp_##NAME##_3, rtwp_##NAME##_4};            \
    static const rt_fn rtp_##NAME[RT_TOKENS] = {rtp_##NAME##_1, rtp_##NAME##_2, rtp_##NAME##_3, \
                                                rtp_##NAME##_4, rtp_##NAME##_5, rtp_##NAME##_6, \
                                                rtp_##NAME##_7, rtp_##NAME##_8};                \
    static void rtmp_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,       \
                            float *out, ptrdiff_t os) {                                        \
        int g = r0;                                                                            \
        if (a->T >= 2 && a->T <= RTW_TOKENS)                                                   \
            for (; g + 32 <= r1; g += 32) rtwp_##NAME[a->T - 1](w + (size_t)g * rb, rb, a, out + g, os); \
        for (; g + 16 <= r1; g += 16)                                                          \
            for (int t0 = 0; t0 < a->T; t0 += RT_TOKENS) {                                     \
                const int nt = a->T - t0 < RT_TOKENS ? a->T - t0 : RT_TOKENS;                  \
                rtp_##NAME[nt - 1](w + (size_t)g * rb, rb, a, t0, out + g, os, t0 == 0);       \
            }                                                                                  \
    }

RTP32_ALL(q4_0, 20, 8, 0)
RTP32_ALL(q4_1, 20, 0, 1)
RTP32_ALL(q5_0, 24, 16, 0)
RTP32_ALL(q5_1, 24, 0, 1)
RTP32_ALL(q8_0, 36, 128, 0)

static void fill_rtile_packed(mm_fn *packed) {
    packed[W_Q4_0] = rtmp_q4_0;
    packed[W_Q4_1] = rtmp_q4_1;
    packed[W_Q5_0] = rtmp_q5_0;
    packed[W_Q5_1] = rtmp_q5_1;
    packed[W_Q8_0] = rtmp_q8_0;
}
