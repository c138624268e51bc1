/* Weight types and bit-exact dequantization of whole rows.
 *
 * Each formula rounds exactly where chord_core.quants (and gguf.quants)
 * does, so get_rows / dequantize_rows equal the NumPy reference bit for
 * bit. That needs the multiply and the add of the min kept as two roundings:
 * no fused multiply-add, hence fp-contract off for this file (gcc contracts
 * by default in GNU C mode, and arm64 always has FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "kernels.h"

const wtype_info WTYPES[W_COUNT] = {
    [W_F32] = {0, "F32", 1, 4, ACT_F32},
    [W_F16] = {1, "F16", 1, 2, ACT_F32},
    [W_BF16] = {30, "BF16", 1, 2, ACT_F32},
    [W_Q4_0] = {2, "Q4_0", 32, 18, ACT_Q8_32},
    [W_Q4_1] = {3, "Q4_1", 32, 20, ACT_Q8_32},
    [W_Q5_0] = {6, "Q5_0", 32, 22, ACT_Q8_32},
    [W_Q5_1] = {7, "Q5_1", 32, 24, ACT_Q8_32},
    [W_Q8_0] = {8, "Q8_0", 32, 34, ACT_Q8_32},
    [W_Q2_K] = {10, "Q2_K", 256, 84, ACT_Q8_K},
    [W_Q3_K] = {11, "Q3_K", 256, 110, ACT_Q8_K},
    [W_Q4_K] = {12, "Q4_K", 256, 144, ACT_Q8_K},
    [W_Q5_K] = {13, "Q5_K", 256, 176, ACT_Q8_K},
    [W_Q6_K] = {14, "Q6_K", 256, 210, ACT_Q8_K},
};

int wtype_from_ggml(long ggml_id) {
    for (int i = 0; i < W_COUNT; i++)
        if (WTYPES[i].ggml_id == ggml_id) return i;
    return -1;
}

static void dq_32(int wt, const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b));
    switch (wt) {
    case W_Q8_0:
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        break;
    case W_Q4_0:
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
    case W_Q4_1: {
        float m = f16_to_f32(rd16(b + 2));
        for (int j = 0; j < 16; j++) {
            float lo = (float)(b[4 + j] & 0xF) * d, hi = (float)(b[4 + j] >> 4) * d;
            y[j] = lo + m;
            y[j + 16] = hi + m;
        }
        break;
    }
    case W_Q5_0: {
        uint32_t qh = rd32(b + 2);
        for (int j = 0; j < 16; j++) {
            int lo = (b[6 + j] & 0xF) | (((qh >> j) & 1) << 4);
            int hi = (b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            y[j] = (float)(lo - 16) * d;
            y[j + 16] = (float)(hi - 16) * d;
        }
        break;
    }
    case W_Q5_1: {
        float m = f16_to_f32(rd16(b + 2));
        uint32_t qh = rd32(b + 4);
        for (int j = 0; j < 16; j++) {
            int lo = (b[8 + j] & 0xF) | (((qh >> j) & 1) << 4);
            int hi = (b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            float a = (float)lo * d, c = (float)hi * d;
            y[j] = a + m;
            y[j + 16] = c + m;
        }
        break;
    }
    }
}

/* The k-quants go sub-block by sub-block with the scale products hoisted,
 * so the inner loops over 16-32 elements vectorize. */
static void dq_q2k(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b + 80)), dmin = f16_to_f32(rd16(b + 82));
    for (int e0 = 0; e0 < QK_K; e0 += 16) {
        int h = e0 / 128, j = (e0 % 128) / 32, l0 = e0 % 32, s = b[e0 / 16];
        float dl = d * (float)(s & 0xF), ml = dmin * (float)(s >> 4);
        const uint8_t *q = b + 16 + h * 32 + l0;
        for (int l = 0; l < 16; l++) {
            float p = (float)((q[l] >> (2 * j)) & 3) * dl;
            y[e0 + l] = p - ml;
        }
    }
}

static void dq_q3k(const uint8_t *b, float *y) {
    int8_t sc[16];
    q3k_scales(b + 96, sc);
    float d = f16_to_f32(rd16(b + 108));
    for (int e0 = 0; e0 < QK_K; e0 += 16) {
        int h = e0 / 128, j = (e0 % 128) / 32, l0 = e0 % 32, hbit = e0 / 32;
        float dl = d * (float)sc[e0 / 16];
        const uint8_t *q = b + 32 + h * 32 + l0, *hm = b + l0;
        for (int l = 0; l < 16; l++) {
            int v = ((q[l] >> (2 * j)) & 3) - (((hm[l] >> hbit) & 1) ? 0 : 4);
            y[e0 + l] = (float)v * dl;
        }
    }
}

/* Q4_K and Q5_K share scales and nibble order; Q5_K adds a fifth bit. */
static void dq_q45k(const uint8_t *b, float *y, int five) {
    float d = f16_to_f32(rd16(b)), dmin = f16_to_f32(rd16(b + 2));
    const uint8_t *qs = b + (five ? 48 : 16), *qh = b + 16;
    for (int sub = 0; sub < 8; sub++) {
        int sc, m, g = sub / 2, shift = (sub % 2) * 4;
        k4_scale_min(sub, b + 4, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            int q = (qs[g * 32 + l] >> shift) & 0xF;
            if (five) q |= ((qh[l] >> sub) & 1) << 4;
            float p = (float)q * dl;
            y[32 * sub + l] = p - ml;
        }
    }
}

static void dq_q6k(const uint8_t *b, float *y) {
    float d = f16_to_f32(rd16(b + 208));
    for (int e0 = 0; e0 < QK_K; e0 += 16) {
        int h = e0 / 128, k = (e0 % 128) / 32, l0 = e0 % 32;
        const uint8_t *ql = b + 64 * h + ((k & 1) ? 32 : 0) + l0, *qh = b + 128 + 32 * h + l0;
        int shift = (k & 2) ? 4 : 0;
        float dl = d * (float)(int8_t)b[192 + e0 / 16];
        for (int l = 0; l < 16; l++) {
            int q = (((ql[l] >> shift) & 0xF) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
            y[e0 + l] = (float)q * dl;
        }
    }
}

void dequant_row(int wt, const uint8_t *row, float *out, int cols) {
    int be = WTYPES[wt].block_elems, bb = WTYPES[wt].block_bytes;
    switch (wt) {
    case W_F32:
        memcpy(out, row, (size_t)cols * 4);
        return;
    case W_F16:
        for (int i = 0; i < cols; i++) out[i] = f16_to_f32(rd16(row + 2 * i));
        return;
    case W_BF16:
        for (int i = 0; i < cols; i++) out[i] = bf16_to_f32(rd16(row + 2 * i));
        return;
    }
    for (int i = 0; i < cols / be; i++) {
        const uint8_t *b = row + (size_t)i * bb;
        float *y = out + (size_t)i * be;
        switch (wt) {
        case W_Q2_K: dq_q2k(b, y); break;
        case W_Q3_K: dq_q3k(b, y); break;
        case W_Q4_K: dq_q45k(b, y, 0); break;
        case W_Q5_K: dq_q45k(b, y, 1); break;
        case W_Q6_K: dq_q6k(b, y); break;
        default: dq_32(wt, b, y);
        }
    }
}
