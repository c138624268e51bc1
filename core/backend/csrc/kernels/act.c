/* Activation quantization: float32 x -> 8-bit blocks, as llama.cpp does
 * (Q8_0-like per 32 for the 32-element weight types, Q8_K per 256 for the
 * k-quants). Scale d = amax / 127 and q = round-half-even(x / d) in exact
 * IEEE float32 steps, so tests can replicate it in NumPy bit for bit. */
#include <math.h>

#include "kernels.h"

/* Round half to even for |v| < 2^22 without a libm call (vectorizes). */
static inline int nearest_int(float v) {
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static float quantize_block(const float *x, int8_t *q, int n) {
    float amax = 0.f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.f;
    float id = d != 0.f ? 1.f / d : 0.f;
    /* a NaN or inf in x gives garbage here, never an out-of-range value */
    for (int i = 0; i < n; i++) {
        int v = nearest_int(x[i] * id);
        q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return d;
}

static void quantize_q8_32(act_t *a, int t) {
    const float *x = a->xf + (size_t)t * a->cols;
    int8_t *q = a->q + (size_t)t * a->cols;
    int nb = a->cols / 32;
    for (int b = 0; b < nb; b++) {
        int8_t *qb = q + 32 * b;
        size_t i = (size_t)t * nb + b;
        a->d[i] = quantize_block(x + 32 * b, qb, 32);
        int s = 0;
        for (int k = 0; k < 32; k++) s += qb[k];
        a->bsum[i] = s;
        a->ds[i] = a->d[i] * (float)s;
    }
}

static void quantize_q8_k(act_t *a, int t) {
    const float *x = a->xf + (size_t)t * a->cols;
    int8_t *q = a->q + (size_t)t * a->cols;
    int nb = a->cols / QK_K;
    for (int b = 0; b < nb; b++) {
        int8_t *qb = q + QK_K * b;
        a->d[(size_t)t * nb + b] = quantize_block(x + QK_K * b, qb, QK_K);
        for (int k = 0; k < 16; k++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += qb[16 * k + i];
            a->sum[(size_t)t * (a->cols / 16) + 16 * b + k] = (int16_t)s;
        }
        for (int k = 0; k < 8; k++) {
            const int16_t *s16 = a->sum + (size_t)t * (a->cols / 16) + 16 * b + 2 * k;
            a->sum32[(size_t)t * (a->cols / 32) + 8 * b + k] = (int16_t)(s16[0] + s16[1]);
        }
    }
}

void act_quantize_rows(act_t *a, int t0, int t1) {
    for (int t = t0; t < t1; t++) {
        if (a->kind == ACT_Q8_32) quantize_q8_32(a, t);
        else if (a->kind == ACT_Q8_K) quantize_q8_k(a, t);
    }
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Carves the arrays of `a` out of `base` (64-byte aligned pieces); with
 * base NULL only counts the bytes. */
static size_t carve(act_t *a, char *base) {
    size_t n = (size_t)a->T * a->cols, off = 0;
#define PIECE(field, type, count)                                                              \
    do {                                                                                       \
        if (base) a->field = (type *)(base + off);                                             \
        off += up64((count) * sizeof(type));                                                   \
    } while (0)
    if (a->kind == ACT_Q8_32) {
        PIECE(q, int8_t, n);
        PIECE(d, float, n / 32);
        PIECE(ds, float, n / 32);
        PIECE(bsum, int32_t, n / 32);
    } else if (a->kind == ACT_Q8_K) {
        PIECE(q, int8_t, n);
        PIECE(d, float, n / QK_K);
        PIECE(sum, int16_t, n / 16);
        PIECE(sum32, int16_t, n / 32);
    }
#undef PIECE
    return off;
}

size_t act_scratch_bytes(enum act_kind kind, int T, int cols) {
    act_t a = {.T = T, .cols = cols, .kind = kind};
    return carve(&a, NULL);
}

/* Lays the arrays out in `scratch` (64-byte aligned, act_scratch_bytes long). */
void act_bind(act_t *a, enum act_kind kind, int T, int cols, const float *xf, void *scratch) {
    memset(a, 0, sizeof *a);
    a->T = T;
    a->cols = cols;
    a->kind = kind;
    a->xf = xf;
    carve(a, scratch);
}
