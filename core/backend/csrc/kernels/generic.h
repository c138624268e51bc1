/* Portable kernels for every weight type, written so that gcc vectorizes
 * the inner loops. This header is compiled once per ISA (isa_*.c include it
 * under their target pragma with their own KFN suffix), so the AVX2 and
 * AVX-512 builds of the same C get the wider registers; hand-written SIMD in
 * simd_*.c then replaces the hot types in those tables.
 *
 * Shape of every kernel: per output row, per tile of TT tokens, each weight
 * block is unpacked once into small integer arrays and dotted with the
 * tile's quantized activations, so prefill reuses the unpacking TT times. */
#ifndef KFN
#error "define KFN(name) before including generic.h"
#endif

#define TT 16

#include "unpack.h"

static inline int KFN(dot_i8)(const int8_t *a, const int8_t *b, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The order of kernels.h: an exact integer per block, then one multiply
 * and one add per term (fp-contract is off), block after block. */
#define MM_Q32(NAME, BB, HASMIN)                                                               \
    static void KFN(mm_##NAME)(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,    \
                               float *out, ptrdiff_t os) {                                     \
        int nb = a->cols / 32;                                                                 \
        for (int r = r0; r < r1; r++) {                                                        \
            const uint8_t *row = w + (size_t)r * rb;                                           \
            for (int t0 = 0; t0 < a->T; t0 += TT) {                                            \
                int nt = a->T - t0 < TT ? a->T - t0 : TT;                                      \
                float acc[TT] = {0};                                                           \
                for (int b = 0; b < nb; b++) {                                                 \
                    KFN(blk32) u;                                                              \
                    KFN(unpack_##NAME)(row + (size_t)b * BB, &u);                              \
                    for (int t = 0; t < nt; t++) {                                             \
                        size_t xb = (size_t)(t0 + t) * nb + b;                                 \
                        int s = 256 * KFN(dot_i8)(u.q, a->q + xb * 32, 32) +                   \
                                KFN(dot_i8)(u.q, a->q2 + xb * 32, 32);                         \
                        acc[t] = acc[t] + (float)s * (u.d * a->d[xb]);                         \
                        if (HASMIN) acc[t] = acc[t] + u.m * a->ds[xb];                         \
                    }                                                                          \
                }                                                                              \
                for (int t = 0; t < nt; t++) out[(t0 + t) * os + r] = acc[t];                  \
            }                                                                                  \
        }                                                                                      \
    }

MM_Q32(q4_0, 18, 0)
MM_Q32(q4_1, 20, 1)
MM_Q32(q5_0, 22, 0)
MM_Q32(q5_1, 24, 1)
MM_Q32(q8_0, 34, 0)

/* I (sub-block scales applied) and M (mins times quant sums) of one
 * super-block against one level of quants: exact integers. */
static inline void KFN(dot_k)(const KFN(blkk) *u, const int8_t *xq, const int16_t *bsum,
                              int32_t *I, int32_t *M) {
    int32_t p[16];
    for (int j = 0; j < 16; j++) p[j] = KFN(dot_i8)(u->q + 16 * j, xq + 16 * j, 16);
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 16; j++) {
        isum += u->sc[j] * p[j];
        msum += u->mn[j] * bsum[j];
    }
    *I = isum;
    *M = msum;
}

#define MM_K(NAME, BB, HASMIN)                                                                 \
    static void KFN(mm_##NAME)(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,    \
                               float *out, ptrdiff_t os) {                                     \
        int nb = a->cols / QK_K;                                                               \
        for (int r = r0; r < r1; r++) {                                                        \
            const uint8_t *row = w + (size_t)r * rb;                                           \
            for (int t0 = 0; t0 < a->T; t0 += TT) {                                            \
                int nt = a->T - t0 < TT ? a->T - t0 : TT;                                      \
                float acc[TT] = {0};                                                           \
                for (int b = 0; b < nb; b++) {                                                 \
                    KFN(blkk) u;                                                               \
                    KFN(unpack_##NAME)(row + (size_t)b * BB, &u);                              \
                    for (int t = 0; t < nt; t++) {                                             \
                        size_t xb = (size_t)(t0 + t) * nb + b;                                 \
                        int32_t I1, M1, I2, M2;                                                \
                        KFN(dot_k)(&u, a->q + xb * QK_K, a->sum + xb * 16, &I1, &M1);          \
                        KFN(dot_k)(&u, a->q2 + xb * QK_K, a->sum2 + xb * 16, &I2, &M2);        \
                        acc[t] = acc[t] + two_level(I1, I2) * (u.d * a->d[xb]);                \
                        if (HASMIN) acc[t] = acc[t] - two_level(M1, M2) * (u.dmin * a->d[xb]); \
                    }                                                                          \
                }                                                                              \
                for (int t = 0; t < nt; t++) out[(t0 + t) * os + r] = acc[t];                  \
            }                                                                                  \
        }                                                                                      \
    }

MM_K(q2_k, 84, 1)
MM_K(q3_k, 110, 0)
MM_K(q4_k, 144, 1)
MM_K(q5_k, 176, 1)
MM_K(q6_k, 210, 0)

/* ---- float weights: x stays float32 ------------------------------------- */

#define FCHUNK 256

static inline float KFN(dot_f32)(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
    for (; i < n; i++) acc[0] += a[i] * b[i];
    float s = 0.f;
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

static inline void KFN(to_f32)(int wt, const uint8_t *p, float *y, int n) {
    if (wt == W_F32) memcpy(y, p, (size_t)n * 4);
    else if (wt == W_F16) for (int i = 0; i < n; i++) y[i] = f16_to_f32(rd16(p + 2 * i));
    else for (int i = 0; i < n; i++) y[i] = bf16_to_f32(rd16(p + 2 * i));
}

static inline void KFN(mm_float)(int wt, const uint8_t *w, size_t rb, int r0, int r1,
                                 const act_t *a, float *out, ptrdiff_t os) {
    int es = WTYPES[wt].block_bytes;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * rb;
        for (int t0 = 0; t0 < a->T; t0 += TT) {
            int nt = a->T - t0 < TT ? a->T - t0 : TT;
            float acc[TT] = {0};
            for (int c = 0; c < a->cols; c += FCHUNK) {
                int n = a->cols - c < FCHUNK ? a->cols - c : FCHUNK;
                float buf[FCHUNK];
                KFN(to_f32)(wt, row + (size_t)c * es, buf, n);
                for (int t = 0; t < nt; t++)
                    acc[t] += KFN(dot_f32)(buf, a->xf + (size_t)(t0 + t) * a->cols + c, n);
            }
            for (int t = 0; t < nt; t++) out[(t0 + t) * os + r] = acc[t];
        }
    }
}

static void KFN(mm_f32)(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a, float *out,
                        ptrdiff_t os) {
    KFN(mm_float)(W_F32, w, rb, r0, r1, a, out, os);
}

static void KFN(mm_f16)(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a, float *out,
                        ptrdiff_t os) {
    KFN(mm_float)(W_F16, w, rb, r0, r1, a, out, os);
}

static void KFN(mm_bf16)(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a, float *out,
                         ptrdiff_t os) {
    KFN(mm_float)(W_BF16, w, rb, r0, r1, a, out, os);
}

static void KFN(fill_generic)(isa_table *t) {
    t->mm[W_F32] = KFN(mm_f32);
    t->mm[W_F16] = KFN(mm_f16);
    t->mm[W_BF16] = KFN(mm_bf16);
    t->mm[W_Q4_0] = KFN(mm_q4_0);
    t->mm[W_Q4_1] = KFN(mm_q4_1);
    t->mm[W_Q5_0] = KFN(mm_q5_0);
    t->mm[W_Q5_1] = KFN(mm_q5_1);
    t->mm[W_Q8_0] = KFN(mm_q8_0);
    t->mm[W_Q2_K] = KFN(mm_q2_k);
    t->mm[W_Q3_K] = KFN(mm_q3_k);
    t->mm[W_Q4_K] = KFN(mm_q4_k);
    t->mm[W_Q5_K] = KFN(mm_q5_k);
    t->mm[W_Q6_K] = KFN(mm_q6_k);
}
