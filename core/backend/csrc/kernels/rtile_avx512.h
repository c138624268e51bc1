/* Products of 1-63 tokens (decode; a batched decode step of several
 * sequences, a speculative verify) on AVX-512 VNNI, included by
 * simd_avx512_vnni.c.
 *
 * The one-token kernels multiply each row's block into int32 lanes and sum
 * the lanes of 16 (or 4) rows by a shuffle tree for every token, and the
 * k-quants apply their sub-block scales to every 64 products (maddubs +
 * vpdpwssd): per token that is 2-3x the work of the tile layout, where one
 * vpdpbusd does 4 elements of 16 rows and a sub-block scale costs one
 * vpmulld per 16 rows. The tile path packs that layout in memory (scalar C,
 * paid back only from 12-32 tokens); here a block of 16 rows is transposed
 * in registers instead (t16x4: four 16-byte loads per register, a 4 x 4
 * dword transpose in each 128-bit lane), multiplied with up to RT_TOKENS
 * tokens, and dropped. Every (row, token) gets the integers and float
 * operations of kernels.h in the order the one-token kernels use, so rows
 * keep their bits whatever T. Full groups of 16 rows only; a last partial
 * group goes to the one-token kernels, as Q6_K's T = 1 and 2 (see
 * RT_DRIVER). */

#define RT_TOKENS 8

/* The transposes and unpacks are forced inline: gcc otherwise called t16x4
 * out of line from the larger kernels, and since every zmm register is
 * caller-saved, each call spilled and reloaded the tokens' accumulators and
 * passed its 4 results through the stack (~2x the per-token cost). */
#define RT_INLINE static inline __attribute__((always_inline))

/* Rows i, i + 4, i + 8, i + 12 of a 16-row group (p = row 0's block):
 * their 16 bytes at `at` in the 128-bit lanes 0..3. */
RT_INLINE __m512i rt_rows4(const uint8_t *p, size_t rb, int i, size_t at) {
    /* broadcast loads merged under masks: load ports and blends, where
     * vinserti32x4 takes the shuffle unit that the transposes need */
    const uint8_t *q = p + (size_t)i * rb + at;
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q));
    v = _mm512_mask_broadcast_i32x4(v, 0x00F0, _mm_loadu_si128((const __m128i *)(q + 4 * rb)));
    v = _mm512_mask_broadcast_i32x4(v, 0x0F00, _mm_loadu_si128((const __m128i *)(q + 8 * rb)));
    return _mm512_mask_broadcast_i32x4(v, 0xF000, _mm_loadu_si128((const __m128i *)(q + 12 * rb)));
}

/* g[k] lane r = dword k of the 16 bytes at `at` of row r's block. */
RT_INLINE void t16x4(const uint8_t *p, size_t rb, size_t at, __m512i g[4]) {
    __m512i r0 = rt_rows4(p, rb, 0, at), r1 = rt_rows4(p, rb, 1, at);
    __m512i r2 = rt_rows4(p, rb, 2, at), r3 = rt_rows4(p, rb, 3, at);
    __m512i t0 = _mm512_unpacklo_epi32(r0, r1), t1 = _mm512_unpackhi_epi32(r0, r1);
    __m512i t2 = _mm512_unpacklo_epi32(r2, r3), t3 = _mm512_unpackhi_epi32(r2, r3);
    g[0] = _mm512_unpacklo_epi64(t0, t2);
    g[1] = _mm512_unpackhi_epi64(t0, t2);
    g[2] = _mm512_unpacklo_epi64(t1, t3);
    g[3] = _mm512_unpackhi_epi64(t1, t3);
}

RT_INLINE __m512i rt_bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

RT_INLINE __m512 rt_f16_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
RT_INLINE __m512 rt_f16_hi(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

/* vpshufb controls, per dword d of a 128-bit lane: the pattern c0 for
 * d = 0 with 4 * d added to each byte (0x8x bytes stay zeroing). */
static inline __m512i rt_ctl(uint32_t c0) {
    const uint32_t s = 0x04040404u;
    return _mm512_set4_epi32((int)(c0 + 3 * s), (int)(c0 + 2 * s), (int)(c0 + s), (int)c0);
}

/* Byte j of every dword, zero-extended. */
static inline __m512i rt_byte_ctl(int j) { return rt_ctl(0x80808000u | (uint32_t)j); }

/* Bytes j and j + 1 of every dword as two zero-extended int16. */
static inline __m512i rt_pair_ctl(int j) { return rt_ctl(0x80008000u | (uint32_t)(j + 1) << 16 | (uint32_t)j); }

/* The same in the high byte of each int16 (for an arithmetic shift). */
static inline __m512i rt_pair_hi_ctl(int j) { return rt_ctl(0x00800080u | (uint32_t)(j + 1) << 24 | (uint32_t)j << 8); }

/* The token loops spelled out, one named register per token (as the tile
 * kernels: gcc keeps per-token arrays on the stack). */
#define RT_EACH1(X) X(0)
#define RT_EACH2(X) X(0) X(1)
#define RT_EACH3(X) X(0) X(1) X(2)
#define RT_EACH4(X) X(0) X(1) X(2) X(3)
#define RT_EACH5(X) RT_EACH4(X) X(4)
#define RT_EACH6(X) RT_EACH5(X) X(5)
#define RT_EACH7(X) RT_EACH6(X) X(6)
#define RT_EACH8(X) RT_EACH7(X) X(7)

/* ---- 32-element types: w[k] = elements 4k..4k+3 of 16 rows, unsigned;
 * the integer is sum w * (256 q + q2) - OFF * bsum. */
typedef struct {
    __m512i w[8];
    __m512 d, m;
} rt_blk32;

RT_INLINE void rt_nibbles(const __m512i g[4], __m512i w[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int k = 0; k < 4; k++) {
        w[k] = _mm512_and_si512(g[k], m4);
        w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(g[k], 4), m4);
    }
}

/* qh bit e -> 0x10 in the byte of element e: group k takes bits 4k..4k+3,
 * one dword lookup (the index's low 4 bits) per group. */
RT_INLINE void rt_fifth(__m512i qh, __m512i w[8]) {
    const __m512i tab = _mm512_setr_epi32(0x00000000, 0x00000010, 0x00001000, 0x00001010,
                                          0x00100000, 0x00100010, 0x00101000, 0x00101010,
                                          0x10000000, 0x10000010, 0x10001000, 0x10001010,
                                          0x10100000, 0x10100010, 0x10101000, 0x10101010);
    for (int k = 0; k < 8; k++)
        w[k] = _mm512_or_si512(w[k], _mm512_permutexvar_epi32(_mm512_srli_epi32(qh, 4 * k), tab));
}

RT_INLINE void rt_unpack_q4_0(const uint8_t *p, size_t rb, rt_blk32 *u) {
    __m512i g[4], h[4];
    t16x4(p, rb, 2, g);
    rt_nibbles(g, u->w);
    t16x4(p, rb, 0, h);
    u->d = rt_f16_lo(h[0]);
    u->m = _mm512_setzero_ps();
}

RT_INLINE void rt_unpack_q4_1(const uint8_t *p, size_t rb, rt_blk32 *u) {
    __m512i g[4], h[4];
    t16x4(p, rb, 4, g);
    rt_nibbles(g, u->w);
    t16x4(p, rb, 0, h);
    u->d = rt_f16_lo(h[0]);
    u->m = rt_f16_hi(h[0]);
}

/* Q5_0: d at 0, qh at 2, qs at 6; the window at 0 holds d | qh's low half,
 * then qh's high half. */
RT_INLINE void rt_unpack_q5_0(const uint8_t *p, size_t rb, rt_blk32 *u) {
    __m512i g[4], h[4];
    t16x4(p, rb, 6, g);
    rt_nibbles(g, u->w);
    t16x4(p, rb, 0, h);
    rt_fifth(_mm512_or_si512(_mm512_srli_epi32(h[0], 16), _mm512_slli_epi32(h[1], 16)), u->w);
    u->d = rt_f16_lo(h[0]);
    u->m = _mm512_setzero_ps();
}

RT_INLINE void rt_unpack_q5_1(const uint8_t *p, size_t rb, rt_blk32 *u) {
    __m512i g[4], h[4];
    t16x4(p, rb, 8, g);
    rt_nibbles(g, u->w);
    t16x4(p, rb, 0, h);
    rt_fifth(h[1], u->w);
    u->d = rt_f16_lo(h[0]);
    u->m = rt_f16_hi(h[0]);
}

/* Q8_0: w + 128 (offset 128 comes off with the sums). */
RT_INLINE void rt_unpack_q8_0(const uint8_t *p, size_t rb, rt_blk32 *u) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i g[4], h[4];
    t16x4(p, rb, 2, g);
    t16x4(p, rb, 18, h);
    for (int k = 0; k < 4; k++) {
        u->w[k] = _mm512_xor_si512(g[k], flip);
        u->w[k + 4] = _mm512_xor_si512(h[k], flip);
    }
    t16x4(p, rb, 0, g);
    u->d = rt_f16_lo(g[0]);
    u->m = _mm512_setzero_ps();
}

#define RT_DECL_ACC(t) __m512 acc##t = _mm512_setzero_ps();
#define RT_DECL_RS(t) __m512i r##t = _mm512_setzero_si512(), s##t = _mm512_setzero_si512();
#define RT_DOT(t)                                                                              \
    r##t = _mm512_dpbusd_epi32(r##t, wk, rt_bcast32(x + (t) * xs + 4 * k));                   \
    s##t = _mm512_dpbusd_epi32(s##t, wk, rt_bcast32(x2 + (t) * xs + 4 * k));
#define RT_STORE(t) _mm512_storeu_ps(out + (ptrdiff_t)(t) * os, acc##t);

/* kernels.h's order: acc = fma(float(T), d * dx, acc), then the min. */
#define RT_FINISH32(t)                                                                         \
    {                                                                                          \
        const size_t xb = (size_t)(t) * nb + b;                                                \
        __m512i it = _mm512_add_epi32(_mm512_slli_epi32(r##t, 8), s##t);                       \
        if (off) it = _mm512_sub_epi32(it, _mm512_set1_epi32(off * xbs[xb]));                 \
        acc##t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(it), _mm512_mul_ps(u.d, _mm512_set1_ps(xd[xb])), acc##t); \
        if (hasmin) acc##t = _mm512_fmadd_ps(u.m, _mm512_set1_ps(xds[xb]), acc##t);           \
    }

/* FN: the function name's stem; UNPACK(NAME, p, rb, u) reads block b of the
 * group's 16 rows at p = base + b * BSTEP (rows `rb` apart, or packed);
 * PFSTEP: the bytes of the next group each block step prefetches. */
#define RT32_V(FN, UNPACK, NAME, BSTEP, PFSTEP, OFF, HASMIN, NT)                                \
    static void FN##_##NT(const uint8_t *base, size_t rb, const act_t *a, int t0,       \
                                 float *out, ptrdiff_t os, int pf) {                           \
        const int nb = a->cols / 32;                                                           \
        const size_t xs = (size_t)a->cols;                                                     \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb, *xds = a->ds + (size_t)t0 * nb;              \
        const int32_t *xbs = a->bsum + (size_t)t0 * nb;                                        \
        const int off = OFF, hasmin = HASMIN;                                                  \
        (void)xds;                                                                             \
        (void)xbs;                                                                             \
        out += (ptrdiff_t)t0 * os;                                                             \
        RT_EACH##NT(RT_DECL_ACC)                                                               \
        for (int b = 0; b < nb; b++, x += 32, x2 += 32) {                                      \
            const uint8_t *p = base + (size_t)b * (BSTEP);                                          \
            if (pf) prefetch_next_group(base + 16 * rb, PFSTEP, b, 1);                        \
            rt_blk32 u;                                                                        \
            UNPACK(NAME, p, rb, &u);                                                       \
            RT_EACH##NT(RT_DECL_RS)                                                            \
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {                              \
                const __m512i wk = u.w[k];                                                     \
                RT_EACH##NT(RT_DOT)                                                            \
            }                                                                                  \
            RT_EACH##NT(RT_FINISH32)                                                           \
        }                                                                                      \
        RT_EACH##NT(RT_STORE)                                                                  \
    }

#define RT_UNPACK_ROWS(NAME, p, rb, u) rt_unpack_##NAME(p, rb, u)
#define RT32(NAME, BB, OFF, HASMIN, NT) RT32_V(rt_##NAME, RT_UNPACK_ROWS, NAME, BB, 16 * (BB), OFF, HASMIN, NT)

/* Two groups of 16 rows at once for up to RTW_TOKENS tokens: each token's
 * broadcast activations serve 32 rows (the broadcasts take a vector pipe
 * on Zen 5, one per vpdpbusd with one group). Each row's integers and float
 * operations are those of RT32. */
#define RTW_TOKENS 4
#define RTW_DECL_ACC(t) __m512 acca##t = _mm512_setzero_ps(), accb##t = _mm512_setzero_ps();
#define RTW_DECL_RS(t)                                                                         \
    __m512i ra##t = _mm512_setzero_si512(), sa##t = _mm512_setzero_si512();                    \
    __m512i rb##t = _mm512_setzero_si512(), sb##t = _mm512_setzero_si512();
#define RTW_DOT(t)                                                                             \
    {                                                                                          \
        const __m512i bx = rt_bcast32(x + (t) * xs + 4 * k), bx2 = rt_bcast32(x2 + (t) * xs + 4 * k); \
        ra##t = _mm512_dpbusd_epi32(ra##t, ua.w[k], bx);                                       \
        rb##t = _mm512_dpbusd_epi32(rb##t, ub.w[k], bx);                                       \
        sa##t = _mm512_dpbusd_epi32(sa##t, ua.w[k], bx2);                                      \
        sb##t = _mm512_dpbusd_epi32(sb##t, ub.w[k], bx2);                                      \
    }
#define RTW_FIN1(t, G)                                                                         \
    {                                                                                          \
        __m512i it = _mm512_add_epi32(_mm512_slli_epi32(r##G##t, 8), s##G##t);                 \
        if (off) it = _mm512_sub_epi32(it, _mm512_set1_epi32(off * xbs[xb]));                 \
        acc##G##t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(it), _mm512_mul_ps(u##G.d, _mm512_set1_ps(xd[xb])), acc##G##t); \
        if (hasmin) acc##G##t = _mm512_fmadd_ps(u##G.m, _mm512_set1_ps(xds[xb]), acc##G##t);   \
    }
#define RTW_FINISH(t)                                                                          \
    {                                                                                          \
        const size_t xb = (size_t)(t) * nb + b;                                                \
        RTW_FIN1(t, a)                                                                         \
        RTW_FIN1(t, b)                                                                         \
    }
#define RTW_STORE(t)                                                                           \
    _mm512_storeu_ps(out + (ptrdiff_t)(t) * os, acca##t);                                      \
    _mm512_storeu_ps(out + (ptrdiff_t)(t) * os + 16, accb##t);

/* The 32-row kernels' start: activation pointers and zeroed accumulators
 * (shared with rtile_packed_avx512.h's RTWP32). */
#define RTW_PROLOGUE(OFF, HASMIN, NT)                                                          \
    const int nb = a->cols / 32;                                                               \
    const size_t xs = (size_t)a->cols;                                                         \
    const int8_t *x = a->q, *x2 = a->q2;                                                       \
    const float *xd = a->d, *xds = a->ds;                                                      \
    const int32_t *xbs = a->bsum;                                                              \
    const int off = OFF, hasmin = HASMIN;                                                      \
    (void)xds;                                                                                 \
    (void)xbs;                                                                                 \
    RT_EACH##NT(RTW_DECL_ACC)

#define RTW32(NAME, BB, OFF, HASMIN, NT)                                                       \
    static void rtw_##NAME##_##NT(const uint8_t *base, size_t rb, const act_t *a, float *out,  \
                                  ptrdiff_t os) {                                              \
        RTW_PROLOGUE(OFF, HASMIN, NT)                                                          \
        for (int b = 0; b < nb; b++, x += 32, x2 += 32) {                                      \
            const uint8_t *p = base + (size_t)b * BB;                                          \
            prefetch_next_group(base + 32 * rb, 32 * BB, b, 1);                                \
            rt_blk32 ua, ub;                                                                   \
            rt_unpack_##NAME(p, rb, &ua);                                                      \
            rt_unpack_##NAME(p + 16 * rb, rb, &ub);                                            \
            RT_EACH##NT(RTW_DECL_RS)                                                           \
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {                              \
                RT_EACH##NT(RTW_DOT)                                                           \
            }                                                                                  \
            RT_EACH##NT(RTW_FINISH)                                                            \
        }                                                                                      \
        RT_EACH##NT(RTW_STORE)                                                                 \
    }

typedef void (*rtw_fn)(const uint8_t *base, size_t rb, const act_t *a, float *out, ptrdiff_t os);

/* Groups of 16 rows, tokens RT_TOKENS at a time; a partial last group and
 * T below MIN_T go to `one`. Even one token is faster here than in the
 * one-token kernels (no shuffle tree per block: SmolLM2's 46080 x 576 Q4_1
 * 0.43 ms against 0.58, its 49152 x 576 Q8_0 0.68 against 1.05, Gemma 3's
 * Q4_K 0.20 against 0.23), except for Q6_K, whose transposes cost more
 * than its one-token kernel's whole product (T = 2 about even). */
typedef void (*rt_fn)(const uint8_t *base, size_t rb, const act_t *a, int t0, float *out, ptrdiff_t os, int pf);

#define RT_TABLE(NAME)                                                                         \
    static const rt_fn rt_##NAME[RT_TOKENS] = {rt_##NAME##_1, rt_##NAME##_2, rt_##NAME##_3, rt_##NAME##_4, \
                                               rt_##NAME##_5, rt_##NAME##_6, rt_##NAME##_7, rt_##NAME##_8};

#define RT_DRIVER_W(NAME, ONE, MIN_T, WIDE)                                                    \
    RT_TABLE(NAME)                                                                             \
    static void rtm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,        \
                           float *out, ptrdiff_t os) {                                         \
        if (a->T < MIN_T) {                                                                    \
            ONE(w, rb, r0, r1, a, out, os);                                                    \
            return;                                                                            \
        }                                                                                      \
        int g = r0;                                                                            \
        if (WIDE && a->T >= 2 && a->T <= RTW_TOKENS)                                                      \
            for (; g + 32 <= r1; g += 32) rtw_##NAME[a->T - 1](w + (size_t)g * rb, rb, a, out + g, os); \
        for (; g + 16 <= r1; g += 16) {                                                        \
            const uint8_t *base = w + (size_t)g * rb;                                          \
            for (int t0 = 0; t0 < a->T; t0 += RT_TOKENS) {                                     \
                const int nt = a->T - t0 < RT_TOKENS ? a->T - t0 : RT_TOKENS, pf = t0 == 0;    \
                rt_##NAME[nt - 1](base, rb, a, t0, out + g, os, pf);                           \
            }                                                                                  \
        }                                                                                      \
        if (g < r1) ONE(w, rb, g, r1, a, out, os);                                             \
    }

#define RT_DRIVER(NAME, ONE, MIN_T) RT_DRIVER_W(NAME, ONE, MIN_T, 0)
#define rtw_q4_k ((const rtw_fn *)0) /* no wide kernels for the k-quants */
#define rtw_q6_k ((const rtw_fn *)0)

#define RT32_ALL(NAME, BB, OFF, HASMIN)                                                        \
    RTW32(NAME, BB, OFF, HASMIN, 1)                                                            \
    RTW32(NAME, BB, OFF, HASMIN, 2)                                                            \
    RTW32(NAME, BB, OFF, HASMIN, 3)                                                            \
    RTW32(NAME, BB, OFF, HASMIN, 4)                                                            \
    static const rtw_fn rtw_##NAME[RTW_TOKENS] = {rtw_##NAME##_1, rtw_##NAME##_2, rtw_##NAME##_3, rtw_##NAME##_4}; \
    RT32(NAME, BB, OFF, HASMIN, 1)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 2)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 3)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 4)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 5)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 6)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 7)                                                             \
    RT32(NAME, BB, OFF, HASMIN, 8)                                                             \
    RT_DRIVER_W(NAME, mmt_##NAME, 1, 1)

RT32_ALL(q4_0, 18, 8, 0)
RT32_ALL(q4_1, 20, 0, 1)
RT32_ALL(q5_0, 22, 16, 0)
RT32_ALL(q5_1, 24, 0, 1)
RT32_ALL(q8_0, 34, 128, 0)

/* ---- k-quants. Per sub-block: r / s = the products with each level,
 * then is / js += r / s * scale (exact: both stay below 2^31); the mins
 * (or Q6_K's offset 32 times the scales) as int16 pairs against the
 * activations' per-32 / per-16 sums; then kernels.h's order. */
#define RTK_DECL_IS(t) __m512i is##t = _mm512_setzero_si512(), js##t = _mm512_setzero_si512();
#define RTK_SCALE(t)                                                                           \
    is##t = _mm512_add_epi32(is##t, _mm512_mullo_epi32(r##t, sc));                             \
    js##t = _mm512_add_epi32(js##t, _mm512_mullo_epi32(s##t, sc));
#define RTK_DOT(t)                                                                             \
    r##t = _mm512_dpbusd_epi32(r##t, wk, rt_bcast32(x + (t) * xs + xo));                       \
    s##t = _mm512_dpbusd_epi32(s##t, wk, rt_bcast32(x2 + (t) * xs + xo));
#define RTK_MINS(t)                                                                            \
    __m512i m1##t = _mm512_setzero_si512(), m2##t = _mm512_setzero_si512();                    \
    for (int pr = 0; pr < NPAIR; pr++) {                                                       \
        m1##t = _mm512_dpwssd_epi32(m1##t, mn[pr], rt_bcast32(bs + (t) * bss + 2 * pr));       \
        m2##t = _mm512_dpwssd_epi32(m2##t, mn[pr], rt_bcast32(bs2 + (t) * bss + 2 * pr));      \
    }
#define RTK_FINISH_MIN(t)                                                                      \
    {                                                                                          \
        RTK_MINS(t)                                                                            \
        __m512 dx = _mm512_set1_ps(xd[(size_t)(t) * nb + i]);                                  \
        acc##t = _mm512_fmadd_ps(two_level16(is##t, js##t), _mm512_mul_ps(d, dx), acc##t);    \
        acc##t = _mm512_fnmadd_ps(two_level16(m1##t, m2##t), _mm512_mul_ps(dm, dx), acc##t);  \
    }
#define RTK_FINISH_OFF(t)                                                                      \
    {                                                                                          \
        RTK_MINS(t)                                                                            \
        __m512 dx = _mm512_set1_ps(xd[(size_t)(t) * nb + i]);                                  \
        __m512 v = two_level16(_mm512_sub_epi32(is##t, m1##t), _mm512_sub_epi32(js##t, m2##t)); \
        acc##t = _mm512_fmadd_ps(v, _mm512_mul_ps(d, dx), acc##t);                             \
    }

/* One sub-block of 4 * NG elements starting at element e0: weights wv[0..NG). */
#define RTK_SUB(NT, NG, wv, e0)                                                                \
    {                                                                                          \
        RT_EACH##NT(RT_DECL_RS)                                                                \
        _Pragma("GCC unroll 8") for (int k = 0; k < NG; k++) {                                 \
            const __m512i wk = wv[k];                                                          \
            const size_t xo = (size_t)(e0) + 4 * k;                                            \
            RT_EACH##NT(RTK_DOT)                                                               \
        }                                                                                      \
        RT_EACH##NT(RTK_SCALE)                                                                 \
    }

/* Q4_K: d, dmin at 0, 12 bytes of 6-bit scales and mins at 4, nibbles at
 * 16: byte l of 32-byte chunk c holds elements 64c + l (low) and
 * 64c + 32 + l (high); sub-block = 32 elements. */
#define NPAIR 4
#define RTK_Q4K(NT)                                                                            \
    static void rt_q4_k_##NT(const uint8_t *base, size_t rb, const act_t *a, int t0,           \
                             float *out, ptrdiff_t os, int pf) {                               \
        const int nb = a->cols / QK_K;                                                         \
        const size_t xs = (size_t)a->cols, bss = (size_t)a->cols / 32;                         \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb;                                              \
        const int16_t *bs = a->sum32 + (size_t)t0 * bss, *bs2 = a->sum32_2 + (size_t)t0 * bss; \
        const __m512i m4 = _mm512_set1_epi8(0x0F), m6 = _mm512_set1_epi8(0x3F);                \
        const __m512i m30 = _mm512_set1_epi8(0x30);                                            \
        out += (ptrdiff_t)t0 * os;                                                             \
        RT_EACH##NT(RT_DECL_ACC)                                                               \
        for (int i = 0; i < nb; i++, x += QK_K, x2 += QK_K, bs += 8, bs2 += 8) {               \
            const uint8_t *p = base + (size_t)i * 144;                                         \
            if (pf) prefetch_next_group(base + 16 * rb, 16 * 144, i, 1);                       \
            __m512i h[4];                                                                      \
            t16x4(p, rb, 0, h);                                                                \
            const __m512 d = rt_f16_lo(h[0]), dm = rt_f16_hi(h[0]);                            \
            const __m512i scl = _mm512_and_si512(h[1], m6), mnl = _mm512_and_si512(h[2], m6);  \
            const __m512i sch = _mm512_or_si512(_mm512_and_si512(h[3], m4),                    \
                                                _mm512_and_si512(_mm512_srli_epi32(h[1], 2), m30)); \
            const __m512i mnh = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[3], 4), m4), \
                                                _mm512_and_si512(_mm512_srli_epi32(h[2], 2), m30)); \
            __m512i mn[4] = {_mm512_shuffle_epi8(mnl, rt_pair_ctl(0)), _mm512_shuffle_epi8(mnl, rt_pair_ctl(2)), \
                             _mm512_shuffle_epi8(mnh, rt_pair_ctl(0)), _mm512_shuffle_epi8(mnh, rt_pair_ctl(2))}; \
            RT_EACH##NT(RTK_DECL_IS)                                                           \
            for (int c = 0; c < 4; c++) {                                                      \
                __m512i g[8], lo[8];                                                           \
                t16x4(p, rb, 16 + 32 * c, g);                                                  \
                t16x4(p, rb, 32 + 32 * c, g + 4);                                              \
                for (int k = 0; k < 8; k++) lo[k] = _mm512_and_si512(g[k], m4);                \
                {                                                                              \
                    const __m512i sc = _mm512_shuffle_epi8(c < 2 ? scl : sch, rt_byte_ctl((2 * c) % 4)); \
                    RTK_SUB(NT, 8, lo, 64 * c)                                                 \
                }                                                                              \
                for (int k = 0; k < 8; k++) lo[k] = _mm512_and_si512(_mm512_srli_epi16(g[k], 4), m4); \
                {                                                                              \
                    const __m512i sc = _mm512_shuffle_epi8(c < 2 ? scl : sch, rt_byte_ctl((2 * c + 1) % 4)); \
                    RTK_SUB(NT, 8, lo, 64 * c + 32)                                            \
                }                                                                              \
            }                                                                                  \
            RT_EACH##NT(RTK_FINISH_MIN)                                                        \
        }                                                                                      \
        RT_EACH##NT(RT_STORE)                                                                  \
    }

RTK_Q4K(1)
RTK_Q4K(2)
RTK_Q4K(3)
RTK_Q4K(4)
RTK_Q4K(5)
RTK_Q4K(6)
RTK_Q4K(7)
RTK_Q4K(8)
/* One token of Q4_K stays on its one-token kernel: on matrices streamed
 * from memory (the 7B shape's, file-backed pages) the 16-row transposes
 * ran slower than its 4-row groups (7B decode 8.0 -> 11.2 tok/s, medians of 3 alternating
 * runs, 2026-11-28), while on cache-resident ones (Gemma 3) they only won
 * ~10% of one product. */
RT_DRIVER(q4_k, mm_q4_k, 2)
#undef NPAIR

/* Q6_K: low nibbles at 0 (byte 64h + l: element 128h + l, high nibble
 * 128h + 64 + l), two high bits at 128 (bits 2k, 2k + 1 of byte 32h + l:
 * element 128h + 32k + l), 16 int8 scales at 192, d at 208; values are
 * q + 32; sub-block = 16 elements. */
#define NPAIR 8
#define RTK_Q6K(NT)                                                                            \
    static void rt_q6_k_##NT(const uint8_t *base, size_t rb, const act_t *a, int t0,           \
                             float *out, ptrdiff_t os, int pf) {                               \
        const int nb = a->cols / QK_K;                                                         \
        const size_t xs = (size_t)a->cols, bss = (size_t)a->cols / 16;                         \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb;                                              \
        const int16_t *bs = a->sum + (size_t)t0 * bss, *bs2 = a->sum2 + (size_t)t0 * bss;      \
        const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);               \
        out += (ptrdiff_t)t0 * os;                                                             \
        RT_EACH##NT(RT_DECL_ACC)                                                               \
        for (int i = 0; i < nb; i++, x += QK_K, x2 += QK_K, bs += 16, bs2 += 16) {             \
            const uint8_t *p = base + (size_t)i * 210;                                         \
            if (pf) prefetch_next_group(base + 16 * rb, 16 * 210, i, 1);                       \
            __m512i sv[4], dv[4], mn[8];                                                       \
            t16x4(p, rb, 192, sv);                                                             \
            t16x4(p, rb, 194, dv); /* the last dword: scales 14, 15, then d */                 \
            const __m512 d = rt_f16_hi(dv[3]);                                                 \
            for (int pr = 0; pr < 8; pr++) /* 32 * scale, int16 pairs */                       \
                mn[pr] = _mm512_srai_epi16(_mm512_shuffle_epi8(sv[pr / 2], rt_pair_hi_ctl(2 * (pr % 2))), 3); \
            RT_EACH##NT(RTK_DECL_IS)                                                           \
            for (int hf = 0; hf < 2; hf++) {                                                   \
                for (int jj = 0; jj < 2; jj++) {                                               \
                    __m512i hb[4];                                                             \
                    t16x4(p, rb, 128 + 32 * hf + 16 * jj, hb);                                 \
                    for (int j = jj; j < 4; j += 2) {                                          \
                        __m512i l[4], v[4];                                                    \
                        t16x4(p, rb, 64 * hf + 16 * j, l);                                     \
                        for (int nib = 0; nib < 2; nib++) {                                    \
                            const int sh = 2 * (j / 2) + 4 * nib, s = 8 * hf + 4 * nib + j;    \
                            for (int k = 0; k < 4; k++) {                                      \
                                __m512i lo = nib ? _mm512_srli_epi16(l[k], 4) : l[k];          \
                                __m512i hi = sh <= 4 ? _mm512_slli_epi16(hb[k], 4 - sh)        \
                                                     : _mm512_srli_epi16(hb[k], sh - 4);       \
                                v[k] = _mm512_ternarylogic_epi32(m4, lo, _mm512_and_si512(hi, m30), 0xCA); \
                            }                                                                  \
                            const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(sv[s / 4], 24 - 8 * (s % 4)), 24); \
                            RTK_SUB(NT, 4, v, 16 * s)                                          \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            RT_EACH##NT(RTK_FINISH_OFF)                                                        \
        }                                                                                      \
        RT_EACH##NT(RT_STORE)                                                                  \
    }

RTK_Q6K(1)
RTK_Q6K(2)
RTK_Q6K(3)
RTK_Q6K(4)
RTK_Q6K(5)
RTK_Q6K(6)
RTK_Q6K(7)
RTK_Q6K(8)
RT_DRIVER(q6_k, mm_q6_k, 3)
#undef NPAIR

static void fill_rtile(mm_fn *small) {
    small[W_Q4_0] = rtm_q4_0;
    small[W_Q4_1] = rtm_q4_1;
    small[W_Q5_0] = rtm_q5_0;
    small[W_Q5_1] = rtm_q5_1;
    small[W_Q8_0] = rtm_q8_0;
    small[W_Q4_K] = rtm_q4_k;
    small[W_Q6_K] = rtm_q6_k;
}
