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

/* The same weights one element group k at a time, for the 32-row kernels:
 * their 4 tokens' accumulators take 24 registers, and a whole unpacked
 * block of two groups (16 more) spilled to the stack every block. */
typedef struct {
    __m512i qh; /* Q5_0 / Q5_1: the fifth bits */
} rtp_pre;

RT_INLINE __m512i rtp_nibble(const uint8_t *p, int k) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    return k < 4 ? _mm512_and_si512(rtp_vec(p, k), m4) : _mm512_and_si512(_mm512_srli_epi16(rtp_vec(p, k - 4), 4), m4);
}

RT_INLINE __m512i rtp_fifth_bit(__m512i qh, int k) {
    const __m512i tab = _mm512_setr_epi32(0x00000000, 0x00000010, 0x00001000, 0x00001010,
                                          0x00100000, 0x00100010, 0x00101000, 0x00101010,
                                          0x10000000, 0x10000010, 0x10001000, 0x10001010,
                                          0x10100000, 0x10100010, 0x10101000, 0x10101010);
    return _mm512_permutexvar_epi32(_mm512_srli_epi32(qh, 4 * k), tab);
}

RT_INLINE void rtp_pre_q4_0(const uint8_t *p, rtp_pre *e) { (void)p, (void)e; }
RT_INLINE void rtp_pre_q4_1(const uint8_t *p, rtp_pre *e) { (void)p, (void)e; }
RT_INLINE void rtp_pre_q8_0(const uint8_t *p, rtp_pre *e) { (void)p, (void)e; }
RT_INLINE void rtp_pre_q5_0(const uint8_t *p, rtp_pre *e) {
    e->qh = _mm512_or_si512(_mm512_srli_epi32(rtp_vec(p, 4), 16), _mm512_slli_epi32(rtp_vec(p, 5), 16));
}
RT_INLINE void rtp_pre_q5_1(const uint8_t *p, rtp_pre *e) { e->qh = rtp_vec(p, 5); }

RT_INLINE __m512i rtp_w_q4_0(const uint8_t *p, int k, const rtp_pre *e) { (void)e; return rtp_nibble(p, k); }
RT_INLINE __m512i rtp_w_q4_1(const uint8_t *p, int k, const rtp_pre *e) { (void)e; return rtp_nibble(p, k); }
RT_INLINE __m512i rtp_w_q5_0(const uint8_t *p, int k, const rtp_pre *e) {
    return _mm512_or_si512(rtp_nibble(p, k), rtp_fifth_bit(e->qh, k));
}
RT_INLINE __m512i rtp_w_q5_1(const uint8_t *p, int k, const rtp_pre *e) {
    return _mm512_or_si512(rtp_nibble(p, k), rtp_fifth_bit(e->qh, k));
}
RT_INLINE __m512i rtp_w_q8_0(const uint8_t *p, int k, const rtp_pre *e) {
    (void)e;
    return _mm512_xor_si512(rtp_vec(p, k), _mm512_set1_epi8((char)0x80));
}

/* d and m of a block (the rt_blk32's w are left unset) */
RT_INLINE void rtp_scales_q4_0(const uint8_t *p, rt_blk32 *u) { u->d = rt_f16_lo(rtp_vec(p, 4)); u->m = _mm512_setzero_ps(); }
RT_INLINE void rtp_scales_q5_0(const uint8_t *p, rt_blk32 *u) { u->d = rt_f16_lo(rtp_vec(p, 4)); u->m = _mm512_setzero_ps(); }
RT_INLINE void rtp_scales_q8_0(const uint8_t *p, rt_blk32 *u) { u->d = rt_f16_lo(rtp_vec(p, 8)); u->m = _mm512_setzero_ps(); }
RT_INLINE void rtp_scales_q4_1(const uint8_t *p, rt_blk32 *u) {
    const __m512i h0 = rtp_vec(p, 4);
    u->d = rt_f16_lo(h0);
    u->m = rt_f16_hi(h0);
}
RT_INLINE void rtp_scales_q5_1(const uint8_t *p, rt_blk32 *u) { rtp_scales_q4_1(p, u); }

#define RTWP_DOT(t)                                                                            \
    {                                                                                          \
        const __m512i bx = rt_bcast32(x + (t) * xs + 4 * k), bx2 = rt_bcast32(x2 + (t) * xs + 4 * k); \
        ra##t = _mm512_dpbusd_epi32(ra##t, wa, bx);                                            \
        rb##t = _mm512_dpbusd_epi32(rb##t, wb, bx);                                            \
        sa##t = _mm512_dpbusd_epi32(sa##t, wa, bx2);                                           \
        sb##t = _mm512_dpbusd_epi32(sb##t, wb, bx2);                                           \
    }

/* RTW32 over packed weights, each group k's weights made as the dot
 * products need them; the integers and float steps are RTW32's. */
#define RTWP32(NAME, PB, OFF, HASMIN, NT)                                                      \
    static void rtwp_##NAME##_##NT(const uint8_t *base, size_t rb, const act_t *a, float *out,  \
                                   ptrdiff_t os) {                                             \
        RTW_PROLOGUE(OFF, HASMIN, NT)                                                          \
        for (int b = 0; b < nb; b++, x += 32, x2 += 32) {                                      \
            /* block b of the two groups of 16 rows */                                         \
            const uint8_t *ga = base + (size_t)b * 16 * (PB), *gb = ga + 16 * rb;              \
            prefetch_next_group(base + 32 * rb, 32 * (PB), b, 1);                              \
            rtp_pre ea, eb;                                                                    \
            rtp_pre_##NAME(ga, &ea);                                                           \
            rtp_pre_##NAME(gb, &eb);                                                           \
            RT_EACH##NT(RTW_DECL_RS)                                                           \
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {                              \
                const __m512i wa = rtp_w_##NAME(ga, k, &ea), wb = rtp_w_##NAME(gb, k, &eb);    \
                RT_EACH##NT(RTWP_DOT)                                                          \
            }                                                                                  \
            rt_blk32 ua, ub;                                                                   \
            rtp_scales_##NAME(ga, &ua);                                                        \
            rtp_scales_##NAME(gb, &ub);                                                        \
            RT_EACH##NT(RTW_FINISH)                                                            \
        }                                                                                      \
        RT_EACH##NT(RTW_STORE)                                                                 \
    }

/* PB: packed bytes per row and block (4 * rows_pack_vectors). The driver
 * gets whole groups only (rows_pack.h: matrices of whole groups; module.c
 * splits rows in multiples of 16). */
#define RTP32_ALL(NAME, PB, OFF, HASMIN)                                                       \
    RTWP32(NAME, PB, OFF, HASMIN, 1)                                                     \
    RTWP32(NAME, PB, OFF, HASMIN, 2)                                                     \
    RTWP32(NAME, PB, OFF, HASMIN, 3)                                                     \
    RTWP32(NAME, PB, OFF, HASMIN, 4)                                                     \
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
