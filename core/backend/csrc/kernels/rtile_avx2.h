/* Products of 1-47 tokens on AVX2, included by simd_avx2.c:
 * rtile_avx512.h's scheme on 8 rows. A block of 8 rows is
 * transposed in registers (t8x4: two 16-byte loads per register, a 4 x 4
 * dword transpose in each 128-bit lane), so that one maddubs multiplies 4
 * weights of 8 rows with 4 activations of one token; the int16 pair sums
 * add up for as many groups as cannot overflow (2 * umax * 127 each), then
 * one madd applies ones or the sub-block scale. Per token that is about
 * half the one-token kernels' work (no shuffle tree, one scale per
 * sub-block). Each (row, token) gets kernels.h's integers and float
 * operations in the one-token kernels' order: rows keep their bits. Full
 * groups of 8 rows, from one token on (T = 1 too is faster so: SmolLM2's
 * 46080 x 576 Q4_1 0.79 ms against 1.10, Gemma 3's Q5_0 0.93 against
 * 1.16); a partial last group, Q8_0 (whose |w| = 128 leaves no room to add
 * pair sums in int16) and the k-quants but Q4_K stay on the one-token
 * kernels. */

#define RT2_TOKENS 4

/* g[k] lane r = dword k of the 16 bytes at `at` of row r's block. */
static inline __m256i rt2_rows2(const uint8_t *p, size_t rb, int i, size_t at) {
    const uint8_t *q = p + (size_t)i * rb + at;
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q)),
                                   _mm_loadu_si128((const __m128i *)(q + 4 * rb)), 1);
}

static inline void t8x4(const uint8_t *p, size_t rb, size_t at, __m256i g[4]) {
    __m256i r0 = rt2_rows2(p, rb, 0, at), r1 = rt2_rows2(p, rb, 1, at);
    __m256i r2 = rt2_rows2(p, rb, 2, at), r3 = rt2_rows2(p, rb, 3, at);
    __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1);
    __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3);
    g[0] = _mm256_unpacklo_epi64(t0, t2);
    g[1] = _mm256_unpackhi_epi64(t0, t2);
    g[2] = _mm256_unpacklo_epi64(t1, t3);
    g[3] = _mm256_unpackhi_epi64(t1, t3);
}

static inline __m256i rt2_bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static inline __m256 rt2_f16_lo(__m256i v) {
    const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i h = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pick), 0x08);
    return _mm256_cvtph_ps(_mm256_castsi256_si128(h));
}

static inline __m256 rt2_f16_hi(__m256i v) { return rt2_f16_lo(_mm256_srli_epi32(v, 16)); }

/* vpshufb control, per dword d of a 128-bit lane: c0 with 4 * d added to
 * each byte (0x8x bytes stay zeroing). */
static inline __m256i rt2_ctl(uint32_t c0) {
    const uint32_t s = 0x04040404u;
    __m128i l = _mm_setr_epi32((int)c0, (int)(c0 + s), (int)(c0 + 2 * s), (int)(c0 + 3 * s));
    return _mm256_broadcastsi128_si256(l);
}

#define RT2_EACH1(X) X(0)
#define RT2_EACH2(X) X(0) X(1)
#define RT2_EACH3(X) X(0) X(1) X(2)
#define RT2_EACH4(X) X(0) X(1) X(2) X(3)

typedef void (*rt2_fn)(const uint8_t *base, size_t rb, const act_t *a, int t0, float *out, ptrdiff_t os, int pf);

/* The one-token kernels (partial groups), per type. */
static mm_fn rt2_one[W_COUNT];

#define RT2_DRIVER(NAME, WT)                                                                   \
    static const rt2_fn rt2_##NAME[RT2_TOKENS] = {rt2_##NAME##_1, rt2_##NAME##_2, rt2_##NAME##_3, rt2_##NAME##_4}; \
    static void rt2m_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,       \
                            float *out, ptrdiff_t os) {                                        \
        int g = r0;                                                                            \
        for (; g + 8 <= r1; g += 8) {                                                          \
            const uint8_t *base = w + (size_t)g * rb;                                          \
            for (int t0 = 0; t0 < a->T; t0 += RT2_TOKENS) {                                    \
                const int nt = a->T - t0 < RT2_TOKENS ? a->T - t0 : RT2_TOKENS;                \
                rt2_##NAME[nt - 1](base, rb, a, t0, out + g, os, t0 == 0);                     \
            }                                                                                  \
        }                                                                                      \
        if (g < r1) rt2_one[WT](w, rb, g, r1, a, out, os);                                     \
    }

/* ---- 32-element types: w[k] = elements 4k..4k+3 of 8 rows, unsigned. */
typedef struct {
    __m256i w[8];
    __m256 d, m;
} rt2_blk32;

static inline void rt2_nibbles(const __m256i g[4], __m256i w[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; k++) {
        w[k] = _mm256_and_si256(g[k], m4);
        w[k + 4] = _mm256_and_si256(_mm256_srli_epi16(g[k], 4), m4);
    }
}

/* qh bit e -> 0x10 in the byte of element e. Group k's bits 4k..4k+3 sit
 * in bits 4..7 of byte k / 2 of qh << 4 (k even) or of qh (k odd): that
 * byte copied to the 4 bytes, each keeps its bit, min(., 0x10). */
static inline void rt2_fifth(__m256i qh, __m256i w[8]) {
    const __m256i bit = _mm256_set1_epi32(0x80402010), m10 = _mm256_set1_epi8(0x10);
    const __m256i qh4 = _mm256_slli_epi32(qh, 4);
    for (int k = 0; k < 8; k++) {
        __m256i b = _mm256_shuffle_epi8(k % 2 ? qh : qh4, rt2_ctl(0x01010101u * (uint32_t)(k / 2)));
        w[k] = _mm256_or_si256(w[k], _mm256_min_epu8(_mm256_and_si256(b, bit), m10));
    }
}

static inline void rt2_unpack_q4_0(const uint8_t *p, size_t rb, rt2_blk32 *u) {
    __m256i g[4], h[4];
    t8x4(p, rb, 2, g);
    rt2_nibbles(g, u->w);
    t8x4(p, rb, 0, h);
    u->d = rt2_f16_lo(h[0]);
    u->m = _mm256_setzero_ps();
}

static inline void rt2_unpack_q4_1(const uint8_t *p, size_t rb, rt2_blk32 *u) {
    __m256i g[4], h[4];
    t8x4(p, rb, 4, g);
    rt2_nibbles(g, u->w);
    t8x4(p, rb, 0, h);
    u->d = rt2_f16_lo(h[0]);
    u->m = rt2_f16_hi(h[0]);
}

static inline void rt2_unpack_q5_0(const uint8_t *p, size_t rb, rt2_blk32 *u) {
    __m256i g[4], h[4];
    t8x4(p, rb, 6, g);
    rt2_nibbles(g, u->w);
    t8x4(p, rb, 0, h);
    rt2_fifth(_mm256_or_si256(_mm256_srli_epi32(h[0], 16), _mm256_slli_epi32(h[1], 16)), u->w);
    u->d = rt2_f16_lo(h[0]);
    u->m = _mm256_setzero_ps();
}

static inline void rt2_unpack_q5_1(const uint8_t *p, size_t rb, rt2_blk32 *u) {
    __m256i g[4], h[4];
    t8x4(p, rb, 8, g);
    rt2_nibbles(g, u->w);
    t8x4(p, rb, 0, h);
    rt2_fifth(h[1], u->w);
    u->d = rt2_f16_lo(h[0]);
    u->m = rt2_f16_hi(h[0]);
}

#define RT2_DECL_ACC(t) __m256 acc##t = _mm256_setzero_ps();
#define RT2_DECL_I(t) __m256i i##t = _mm256_setzero_si256(), j##t = _mm256_setzero_si256();
#define RT2_DECL_P(t) __m256i p##t = _mm256_setzero_si256(), q##t = _mm256_setzero_si256();
#define RT2_DOT(t)                                                                             \
    p##t = _mm256_add_epi16(p##t, _mm256_maddubs_epi16(wk, rt2_bcast32(x + (t) * xs + xo)));   \
    q##t = _mm256_add_epi16(q##t, _mm256_maddubs_epi16(wk, rt2_bcast32(x2 + (t) * xs + xo)));
#define RT2_FLUSH(t)                                                                           \
    i##t = _mm256_add_epi32(i##t, _mm256_madd_epi16(p##t, sc));                                \
    j##t = _mm256_add_epi32(j##t, _mm256_madd_epi16(q##t, sc));
#define RT2_STORE(t) _mm256_storeu_ps(out + (ptrdiff_t)(t) * os, acc##t);

/* NG groups of weights wv at element e0, FL groups per int16 flush, the
 * flushes scaled by sc (int16 pairs). */
#define RT2_RUN(NT, NG, FL, wv, e0)                                                            \
    for (int k0 = 0; k0 < NG; k0 += FL) {                                                      \
        RT2_EACH##NT(RT2_DECL_P)                                                               \
        _Pragma("GCC unroll 8") for (int k = k0; k < k0 + FL; k++) {                           \
            const __m256i wk = wv[k];                                                          \
            const size_t xo = (size_t)(e0) + 4 * k;                                            \
            RT2_EACH##NT(RT2_DOT)                                                              \
        }                                                                                      \
        RT2_EACH##NT(RT2_FLUSH)                                                                \
    }

#define RT2_FINISH32(t)                                                                        \
    {                                                                                          \
        const size_t xb = (size_t)(t) * nb + b;                                                \
        __m256i it = _mm256_add_epi32(_mm256_slli_epi32(i##t, 8), j##t);                       \
        if (off) it = _mm256_sub_epi32(it, _mm256_set1_epi32(off * xbs[xb]));                 \
        acc##t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(it), _mm256_mul_ps(u.d, _mm256_set1_ps(xd[xb])), acc##t); \
        if (hasmin) acc##t = _mm256_fmadd_ps(u.m, _mm256_set1_ps(xds[xb]), acc##t);           \
    }

#define RT2_32(NAME, BB, OFF, HASMIN, FL, NT)                                                  \
    static void rt2_##NAME##_##NT(const uint8_t *base, size_t rb, const act_t *a, int t0,      \
                                  float *out, ptrdiff_t os, int pf) {                          \
        const int nb = a->cols / 32;                                                           \
        const size_t xs = (size_t)a->cols;                                                     \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb, *xds = a->ds + (size_t)t0 * nb;              \
        const int32_t *xbs = a->bsum + (size_t)t0 * nb;                                        \
        const int off = OFF, hasmin = HASMIN;                                                  \
        const __m256i sc = _mm256_set1_epi16(1);                                               \
        (void)xds;                                                                             \
        (void)xbs;                                                                             \
        out += (ptrdiff_t)t0 * os;                                                             \
        RT2_EACH##NT(RT2_DECL_ACC)                                                             \
        for (int b = 0; b < nb; b++, x += 32, x2 += 32) {                                      \
            const uint8_t *p = base + (size_t)b * BB;                                          \
            if (pf) prefetch_next_group(base + 8 * rb, 8 * BB, b, 0);                          \
            rt2_blk32 u;                                                                       \
            rt2_unpack_##NAME(p, rb, &u);                                                      \
            RT2_EACH##NT(RT2_DECL_I)                                                           \
            RT2_RUN(NT, 8, FL, u.w, 0)                                                         \
            RT2_EACH##NT(RT2_FINISH32)                                                         \
        }                                                                                      \
        RT2_EACH##NT(RT2_STORE)                                                                \
    }

#define RT2_32_ALL(NAME, BB, OFF, HASMIN, FL, WT)                                              \
    RT2_32(NAME, BB, OFF, HASMIN, FL, 1)                                                       \
    RT2_32(NAME, BB, OFF, HASMIN, FL, 2)                                                       \
    RT2_32(NAME, BB, OFF, HASMIN, FL, 3)                                                       \
    RT2_32(NAME, BB, OFF, HASMIN, FL, 4)                                                       \
    RT2_DRIVER(NAME, WT)

RT2_32_ALL(q4_0, 18, 8, 0, 8, W_Q4_0)
RT2_32_ALL(q4_1, 20, 0, 1, 8, W_Q4_1)
RT2_32_ALL(q5_0, 22, 16, 0, 4, W_Q5_0)
RT2_32_ALL(q5_1, 24, 0, 1, 4, W_Q5_1)

/* ---- Q4_K: i / j = the scaled products with each level, m1 / m2 the
 * mins against the per-32 activation sums; then kernels.h's order. (Q6_K
 * this way measured no faster than its one-token kernel: on AVX2 a
 * one-token maddubs already does 32 products, and Q6_K's values up to 63
 * leave room for only 2 groups per int16 flush.) */
#define RT2K_MINS(t)                                                                           \
    __m256i m1##t = _mm256_setzero_si256(), m2##t = _mm256_setzero_si256();                    \
    for (int pr = 0; pr < npair; pr++) {                                                       \
        m1##t = _mm256_add_epi32(m1##t, _mm256_madd_epi16(mn[pr], rt2_bcast32(bs + (t) * bss + 2 * pr))); \
        m2##t = _mm256_add_epi32(m2##t, _mm256_madd_epi16(mn[pr], rt2_bcast32(bs2 + (t) * bss + 2 * pr))); \
    }
#define RT2K_FINISH_MIN(t)                                                                     \
    {                                                                                          \
        RT2K_MINS(t)                                                                           \
        __m256 dx = _mm256_set1_ps(xd[(size_t)(t) * nb + i]);                                  \
        acc##t = _mm256_fmadd_ps(two_level8(i##t, j##t), _mm256_mul_ps(d, dx), acc##t);     \
        acc##t = _mm256_fnmadd_ps(two_level8(m1##t, m2##t), _mm256_mul_ps(dm, dx), acc##t); \
    }

/* Q4_K: see rtile_avx512.h for the layout. */
#define RT2_Q4K(NT)                                                                            \
    static void rt2_q4_k_##NT(const uint8_t *base, size_t rb, const act_t *a, int t0,          \
                              float *out, ptrdiff_t os, int pf) {                              \
        const int nb = a->cols / QK_K, npair = 4;                                              \
        const size_t xs = (size_t)a->cols, bss = (size_t)a->cols / 32;                         \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb;                                              \
        const int16_t *bs = a->sum32 + (size_t)t0 * bss, *bs2 = a->sum32_2 + (size_t)t0 * bss; \
        const __m256i m4 = _mm256_set1_epi8(0x0F), m6 = _mm256_set1_epi8(0x3F);                \
        const __m256i m30 = _mm256_set1_epi8(0x30);                                            \
        out += (ptrdiff_t)t0 * os;                                                             \
        RT2_EACH##NT(RT2_DECL_ACC)                                                             \
        for (int i = 0; i < nb; i++, x += QK_K, x2 += QK_K, bs += 8, bs2 += 8) {               \
            const uint8_t *p = base + (size_t)i * 144;                                         \
            if (pf) prefetch_next_group(base + 8 * rb, 8 * 144, i, 0);                         \
            __m256i h[4];                                                                      \
            t8x4(p, rb, 0, h);                                                                 \
            const __m256 d = rt2_f16_lo(h[0]), dm = rt2_f16_hi(h[0]);                          \
            const __m256i scl = _mm256_and_si256(h[1], m6), mnl = _mm256_and_si256(h[2], m6);  \
            const __m256i sch = _mm256_or_si256(_mm256_and_si256(h[3], m4),                    \
                                                _mm256_and_si256(_mm256_srli_epi32(h[1], 2), m30)); \
            const __m256i mnh = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(h[3], 4), m4), \
                                                _mm256_and_si256(_mm256_srli_epi32(h[2], 2), m30)); \
            const __m256i pair0 = rt2_ctl(0x80018000u), pair2 = rt2_ctl(0x80038002u);          \
            __m256i mn[4] = {_mm256_shuffle_epi8(mnl, pair0), _mm256_shuffle_epi8(mnl, pair2),  \
                             _mm256_shuffle_epi8(mnh, pair0), _mm256_shuffle_epi8(mnh, pair2)}; \
            RT2_EACH##NT(RT2_DECL_I)                                                           \
            for (int c = 0; c < 4; c++) {                                                      \
                __m256i g[8], lo[8];                                                           \
                t8x4(p, rb, 16 + 32 * c, g);                                                   \
                t8x4(p, rb, 32 + 32 * c, g + 4);                                               \
                for (int hl = 0; hl < 2; hl++) {                                               \
                    const int s = 2 * c + hl; /* scale byte s % 4 of scl / sch, both int16 */  \
                    const __m256i sc = _mm256_shuffle_epi8(s < 4 ? scl : sch, rt2_ctl(0x80008000u | 0x00010001u * (uint32_t)(s % 4))); \
                    for (int k = 0; k < 8; k++)                                                \
                        lo[k] = _mm256_and_si256(hl ? _mm256_srli_epi16(g[k], 4) : g[k], m4);  \
                    RT2_RUN(NT, 8, 8, lo, 32 * s)                                              \
                }                                                                              \
            }                                                                                  \
            RT2_EACH##NT(RT2K_FINISH_MIN)                                                      \
        }                                                                                      \
        RT2_EACH##NT(RT2_STORE)                                                                \
    }

RT2_Q4K(1)
RT2_Q4K(2)
RT2_Q4K(3)
RT2_Q4K(4)
RT2_DRIVER(q4_k, W_Q4_K)

/* small: the one-token kernels, replaced by these for the types they take. */
static void fill_rtile2(mm_fn *small) {
    memcpy(rt2_one, small, sizeof rt2_one);
    small[W_Q4_0] = rt2m_q4_0;
    small[W_Q4_1] = rt2m_q4_1;
    small[W_Q5_0] = rt2m_q5_0;
    small[W_Q5_1] = rt2m_q5_1;
    small[W_Q4_K] = rt2m_q4_k;
}
