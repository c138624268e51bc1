/* AVX-512 one-token kernels of the 32-element block types, included by
 * simd_avx512.c twice: without VNNI (maddubs + madd) and with it (dpbusd).
 *
 * Sixteen rows at a time, one per float lane, as the AVX2 kernels
 * (simd_avx2.c) but two rows per 64-byte register: each pair of rows gives
 * 16 int32 lanes, sum_rows16 turns 8 such registers into one exact integer
 * per row, and the floats follow kernels.h's order (the tile kernels'
 * too). */


/* Two rows' 16 nibble bytes -> 64 bytes: row a's 32 values in element order
 * (low nibbles, then high), then row b's. */
static inline __m512i nibbles_2rows(const uint8_t *pa, const uint8_t *pb) {
    __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)pa)),
                                        _mm_loadu_si128((const __m128i *)pb), 1);
    const __m512i order = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    __m512i z = _mm512_permutex2var_epi64(_mm512_castsi256_si512(t), order,
                                          _mm512_castsi256_si512(_mm256_srli_epi16(t, 4)));
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

static inline __m512i fifth_bits_2rows(const uint8_t *pa, const uint8_t *pb) {
    __mmask64 k = (__mmask64)rd32(pa) | (__mmask64)rd32(pb) << 32;
    return _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10));
}

/* Rows a and b (block pointers) against x and x2 (the block's two levels of
 * quants, each twice): 8 int32 lanes per row adding up to its integer with
 * 256 * q + q2 (Q4_0 / Q5_0 with unsigned weights: the offset comes off
 * afterwards). */
static inline __m512i lanes2_q4_0(const uint8_t *a, const uint8_t *b, __m512i x, __m512i x2) {
    return dot2_us8_512(nibbles_2rows(a + 2, b + 2), x, x2);
}

static inline __m512i lanes2_q4_1(const uint8_t *a, const uint8_t *b, __m512i x, __m512i x2) {
    return dot2_us8_512(nibbles_2rows(a + 4, b + 4), x, x2);
}

static inline __m512i lanes2_q5_0(const uint8_t *a, const uint8_t *b, __m512i x, __m512i x2) {
    __m512i w = _mm512_or_si512(nibbles_2rows(a + 6, b + 6), fifth_bits_2rows(a + 2, b + 2));
    return dot2_us8_512(w, x, x2);
}

static inline __m512i lanes2_q5_1(const uint8_t *a, const uint8_t *b, __m512i x, __m512i x2) {
    __m512i w = _mm512_or_si512(nibbles_2rows(a + 8, b + 8), fifth_bits_2rows(a + 4, b + 4));
    return dot2_us8_512(w, x, x2);
}

static inline __m512i lanes2_q8_0(const uint8_t *a, const uint8_t *b, __m512i x, __m512i x2) {
    __m512i w = join256(_mm256_loadu_si256((const __m256i *)(a + 2)), _mm256_loadu_si256((const __m256i *)(b + 2)));
    __mmask64 neg = _mm512_movepi8_mask(w);
    __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    __m512i sx2 = _mm512_mask_sub_epi8(x2, neg, _mm512_setzero_si512(), x2);
    return dot2_us8_512(_mm512_abs_epi8(w), sx, sx2);
}

/* v[k] holding rows (k, k + 4) for k < 4 and (k + 4, k + 8) for k >= 4
 * (8 lanes each): lane i of the result = row i's sum. */
static inline __m512i sum_rows16(__m512i v0, __m512i v1, __m512i v2, __m512i v3, __m512i v4,
                                 __m512i v5, __m512i v6, __m512i v7) {
#define PAIR32(a, b) _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b))
#define PAIR64(a, b) _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
    __m512i x0 = PAIR64(PAIR32(v0, v1), PAIR32(v2, v3)); /* per 128-bit chunk: v0..v3's sums */
    __m512i x1 = PAIR64(PAIR32(v4, v5), PAIR32(v6, v7));
#undef PAIR32
#undef PAIR64
    return _mm512_add_epi32(_mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The first two f16 of each block (d, and Q4_1/Q5_1's m) of 16 rows. */
static inline void f16_pairs16(const uint8_t *b, const int32_t *off, __m512 *d, __m512 *m) {
    /* scalar loads: measured faster than vpgatherdd here */
    __m512i g = _mm512_setr_epi32((int)rd32(b + off[0]), (int)rd32(b + off[1]), (int)rd32(b + off[2]), (int)rd32(b + off[3]),
                                  (int)rd32(b + off[4]), (int)rd32(b + off[5]), (int)rd32(b + off[6]), (int)rd32(b + off[7]),
                                  (int)rd32(b + off[8]), (int)rd32(b + off[9]), (int)rd32(b + off[10]), (int)rd32(b + off[11]),
                                  (int)rd32(b + off[12]), (int)rd32(b + off[13]), (int)rd32(b + off[14]), (int)rd32(b + off[15]));
    *d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
    *m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
}

#define MM32(NAME, BB, OFF, HASMIN)                                                            \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        const int nb = a->cols / 32;                                                           \
        for (int g = r0; g < r1; g += 16) {                                                    \
            const int n = r1 - g < 16 ? r1 - g : 16;                                           \
            int32_t off[16];                                                                   \
            group_offsets(off, 16, n, rb);                                                     \
            const __mmask16 keep = (__mmask16)((1u << n) - 1);                                 \
            const uint8_t *base = w + (size_t)g * rb;                                          \
            for (int t = 0; t < a->T; t++) {                                                   \
                const int8_t *x = a->q + (size_t)t * a->cols, *x2 = a->q2 + (size_t)t * a->cols; \
                const float *xd = a->d + (size_t)t * nb, *xds = a->ds + (size_t)t * nb;        \
                const int32_t *xs = a->bsum + (size_t)t * nb;                                  \
                __m512 acc = _mm512_setzero_ps();                                              \
                for (int b = 0; b < nb; b++) {                                                 \
                    const uint8_t *p = base + (size_t)b * BB;                                  \
                    if (t == 0) prefetch_next_group(base + 16 * rb, 16 * BB, b, 1);            \
                    __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x + 32 * b))); \
                    __m512i xv2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x2 + 32 * b))); \
                    __m512i it = sum_rows16(                                                   \
                        lanes2_##NAME(p + off[0], p + off[4], xv, xv2), lanes2_##NAME(p + off[1], p + off[5], xv, xv2), \
                        lanes2_##NAME(p + off[2], p + off[6], xv, xv2), lanes2_##NAME(p + off[3], p + off[7], xv, xv2), \
                        lanes2_##NAME(p + off[8], p + off[12], xv, xv2), lanes2_##NAME(p + off[9], p + off[13], xv, xv2), \
                        lanes2_##NAME(p + off[10], p + off[14], xv, xv2), lanes2_##NAME(p + off[11], p + off[15], xv, xv2)); \
                    if (OFF) it = _mm512_sub_epi32(it, _mm512_set1_epi32(OFF * xs[b]));        \
                    __m512 d, m;                                                               \
                    f16_pairs16(p, off, &d, &m);                                               \
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(it), _mm512_mul_ps(d, _mm512_set1_ps(xd[b])), acc); \
                    if (HASMIN) acc = _mm512_fmadd_ps(m, _mm512_set1_ps(xds[b]), acc);         \
                }                                                                              \
                _mm512_mask_storeu_ps(out + (ptrdiff_t)t * os + g, keep, acc);                 \
            }                                                                                  \
        }                                                                                      \
    }

MM32(q4_0, 18, 8, 0)
MM32(q4_1, 20, 0, 1)
MM32(q5_0, 22, 16, 0)
MM32(q5_1, 24, 0, 1)
MM32(q8_0, 34, 0, 0)

/* A few tokens (a batched decode step of several sequences, a speculative
 * verify): the loop above unpacks every block's weights once per token, and
 * unpacking (nibbles, the scale gather) costs more than the products. Here
 * a block's 16 rows are unpacked once for up to MT_TOKENS tokens. Each
 * token's integers are exact and its floats accumulate block after block in
 * the one-token order, so every row keeps its one-token bits. */
#define MT_TOKENS 8

typedef struct {
    __m512i u;       /* two rows' weights, unsigned */
    __mmask64 neg;   /* Q8_0: the weights whose sign moves onto x */
} w2_t;

static inline w2_t w2_q4_0(const uint8_t *a, const uint8_t *b) { return (w2_t){nibbles_2rows(a + 2, b + 2), 0}; }
static inline w2_t w2_q4_1(const uint8_t *a, const uint8_t *b) { return (w2_t){nibbles_2rows(a + 4, b + 4), 0}; }

static inline w2_t w2_q5_0(const uint8_t *a, const uint8_t *b) {
    return (w2_t){_mm512_or_si512(nibbles_2rows(a + 6, b + 6), fifth_bits_2rows(a + 2, b + 2)), 0};
}

static inline w2_t w2_q5_1(const uint8_t *a, const uint8_t *b) {
    return (w2_t){_mm512_or_si512(nibbles_2rows(a + 8, b + 8), fifth_bits_2rows(a + 4, b + 4)), 0};
}

static inline w2_t w2_q8_0(const uint8_t *a, const uint8_t *b) {
    __m512i w = join256(_mm256_loadu_si256((const __m256i *)(a + 2)), _mm256_loadu_si256((const __m256i *)(b + 2)));
    return (w2_t){_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
}

static inline __m512i lanes_w2(w2_t w, __m512i x, __m512i x2, int signed_w) {
    if (signed_w) { /* as lanes2_q8_0 */
        x = _mm512_mask_sub_epi8(x, w.neg, _mm512_setzero_si512(), x);
        x2 = _mm512_mask_sub_epi8(x2, w.neg, _mm512_setzero_si512(), x2);
    }
    return dot2_us8_512(w.u, x, x2);
}

#define MM32_TOKENS(NAME, BB, OFF, HASMIN, SIGNED)                                              \
    static void mmt_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,        \
                           float *out, ptrdiff_t os) {                                         \
        if (a->T == 1) {                                                                       \
            mm_##NAME(w, rb, r0, r1, a, out, os);                                              \
            return;                                                                            \
        }                                                                                      \
        const int nb = a->cols / 32;                                                           \
        for (int g = r0; g < r1; g += 16) {                                                    \
            const int n = r1 - g < 16 ? r1 - g : 16;                                           \
            int32_t off[16];                                                                   \
            group_offsets(off, 16, n, rb);                                                     \
            const __mmask16 keep = (__mmask16)((1u << n) - 1);                                 \
            const uint8_t *base = w + (size_t)g * rb;                                          \
            for (int t0 = 0; t0 < a->T; t0 += MT_TOKENS) {                                     \
                const int nt = a->T - t0 < MT_TOKENS ? a->T - t0 : MT_TOKENS;                  \
                __m512 acc[MT_TOKENS];                                                         \
                for (int j = 0; j < MT_TOKENS; j++) acc[j] = _mm512_setzero_ps();              \
                for (int b = 0; b < nb; b++) {                                                 \
                    const uint8_t *p = base + (size_t)b * BB;                                  \
                    if (t0 == 0) prefetch_next_group(base + 16 * rb, 16 * BB, b, 1);           \
                    const w2_t w0 = w2_##NAME(p + off[0], p + off[4]), w1 = w2_##NAME(p + off[1], p + off[5]); \
                    const w2_t w2 = w2_##NAME(p + off[2], p + off[6]), w3 = w2_##NAME(p + off[3], p + off[7]); \
                    const w2_t w4 = w2_##NAME(p + off[8], p + off[12]), w5 = w2_##NAME(p + off[9], p + off[13]); \
                    const w2_t w6 = w2_##NAME(p + off[10], p + off[14]), w7 = w2_##NAME(p + off[11], p + off[15]); \
                    __m512 d, m;                                                               \
                    f16_pairs16(p, off, &d, &m);                                               \
                    for (int j = 0; j < nt; j++) {                                             \
                        const size_t t = (size_t)(t0 + j), tb = t * nb + b;                    \
                        const int8_t *x = a->q + t * a->cols + 32 * b, *x2 = a->q2 + t * a->cols + 32 * b; \
                        __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x)); \
                        __m512i xv2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x2)); \
                        __m512i it = sum_rows16(                                               \
                            lanes_w2(w0, xv, xv2, SIGNED), lanes_w2(w1, xv, xv2, SIGNED),      \
                            lanes_w2(w2, xv, xv2, SIGNED), lanes_w2(w3, xv, xv2, SIGNED),      \
                            lanes_w2(w4, xv, xv2, SIGNED), lanes_w2(w5, xv, xv2, SIGNED),      \
                            lanes_w2(w6, xv, xv2, SIGNED), lanes_w2(w7, xv, xv2, SIGNED));     \
                        if (OFF) it = _mm512_sub_epi32(it, _mm512_set1_epi32(OFF * a->bsum[tb])); \
                        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(it), _mm512_mul_ps(d, _mm512_set1_ps(a->d[tb])), acc[j]); \
                        if (HASMIN) acc[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(a->ds[tb]), acc[j]); \
                    }                                                                          \
                }                                                                              \
                for (int j = 0; j < nt; j++)                                                   \
                    _mm512_mask_storeu_ps(out + (ptrdiff_t)(t0 + j) * os + g, keep, acc[j]);   \
            }                                                                                  \
        }                                                                                      \
    }

MM32_TOKENS(q4_0, 18, 8, 0, 0)
MM32_TOKENS(q4_1, 20, 0, 1, 0)
MM32_TOKENS(q5_0, 22, 16, 0, 0)
MM32_TOKENS(q5_1, 24, 0, 1, 0)
MM32_TOKENS(q8_0, 34, 0, 0, 1)

static void fill32(mm_fn *small) {
    small[W_Q4_0] = mmt_q4_0;
    small[W_Q4_1] = mmt_q4_1;
    small[W_Q5_0] = mmt_q5_0;
    small[W_Q5_1] = mmt_q5_1;
    small[W_Q8_0] = mmt_q8_0;
}
