/* Shared declarations of chord_core._kernels: weight types, the quantized
 * activations, the per-ISA kernel table. See README.md in this folder. */
#ifndef CHORD_KERNELS_H
#define CHORD_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QK_K 256

/* Internal type index (dense); the ggml ids are mapped in types.c. */
enum wtype {
    W_F32, W_F16, W_BF16, W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0,
    W_Q2_K, W_Q3_K, W_Q4_K, W_Q5_K, W_Q6_K, W_COUNT
};

/* How a kernel wants the activations x: as float32, as 8-bit blocks of 32
 * with a float scale (the 32-element weight types) or of 256 with per-16
 * sums (the k-quants, whose integer sub-block scales then stay integer). */
enum act_kind { ACT_F32, ACT_Q8_32, ACT_Q8_K };

/* act_t.qt: tokens per block of the tile kernels' layout, and from how many
 * tokens a product has it (at most the smallest tile threshold, tile.h). */
#define ACT_TILE_T 4
#define ACT_TILE_MIN_T 12

typedef struct {
    int ggml_id;
    const char *name;
    int block_elems, block_bytes;
    enum act_kind act;
} wtype_info;

extern const wtype_info WTYPES[W_COUNT];
int wtype_from_ggml(long ggml_id); /* -1 when unsupported */

/* Quantized activations for T tokens of `cols` elements, two 8-bit levels:
 * q = round(x / d1) with d1 = amax / 127 per block (as llama.cpp), then
 * q2 = round((x - d1 * q) / d2) with d2 = d1 / 256, so that
 * x ~= d2 * (256 * q + q2), within d1 / 512 (d1 / 256 where q2 is clamped
 * to +-127): the rounding of one level made the model's perplexity swing
 * with last-bit float differences (see README.md). Arrays are token-major.
 * d holds d2. ACT_Q8_32: per 32 elements bsum = sum(256 * q + q2) and
 * ds = d2 * bsum. ACT_Q8_K: per 16 elements sum / sum2 (of q, of q2), per
 * 32 sum32 / sum32_2. */
typedef struct {
    int T, cols;
    enum act_kind kind;
    const float *xf;  /* (T, cols) float32 input */
    int8_t *q, *q2;   /* (T, cols) */
    float *d;         /* (T, cols / block): d2 */
    int32_t *bsum;    /* (T, cols / 32), ACT_Q8_32 only */
    float *ds;        /* (T, cols / 32), ACT_Q8_32 only */
    int16_t *sum, *sum2;     /* (T, cols / 16), ACT_Q8_K only */
    int16_t *sum32, *sum32_2; /* (T, cols / 32), ACT_Q8_K only */
    int8_t *qt;       /* from ACT_TILE_MIN_T tokens: q and q2 again, for the tile kernels (act.c) */
} act_t;

/* Every path computes each (row, token) the same way whatever T, so that a
 * row of a prefill product equals the same token's decode product bit for
 * bit. Per weight block (32 elements, or a k-quant's 256) the dot product
 * with 256 * q + q2 is an exact integer: 32-element types T = sum of signed
 * weight x (256 q + q2) (int32); k-quants I = 256 * I1 + I2, I1 / I2 the
 * products with q / q2 and the integer sub-block scales, and M = 256 * M1
 * + M2 from the mins and quant sums (I and M can pass int32: float(I) is
 * the exact value rounded once, computed through double). Only then
 * floats, in one order, block after block (dx = d2):
 *   32-element types: acc = fma(float(T), dw * dx, acc);
 *                     Q4_1 / Q5_1: then acc = fma(m, ds, acc)
 *   k-quants:         acc = fma(float(I), dw * dx, acc);
 *                     Q2_K / Q4_K / Q5_K: then acc = acc - float(M) * (dmin * dx), fused
 * (portable C: the same with a separate multiply and add; this extension
 * is compiled with fp-contract off so that C never fuses on its own). How
 * the integers are summed is free: integer sums are exact. */
static inline float two_level(int32_t i1, int32_t i2) { return (float)((double)i1 * 256.0 + (double)i2); }

typedef void (*mm_fn)(const uint8_t *w, size_t row_bytes, int r0, int r1,
                      const act_t *a, float *out, ptrdiff_t ostride);

/* packed[wt]: the kernel over weights repacked at load (rows_pack.h), for
 * every T (from 64 tokens it is about even with the tile path, below faster);
 * NULL where this path has none. */
typedef struct {
    const char *name;
    mm_fn mm[W_COUNT];
    mm_fn packed[W_COUNT];
} isa_table;

/* Dispatch (dispatch.c). */
const isa_table *isa_current(void);
int isa_available(const char **names, int cap); /* best first */
int isa_select(const char *name);               /* 0 ok, -1 unknown/unsupported */

/* Tables filled by each ISA's translation unit. */
void isa_fill_portable(isa_table *t);
#if defined(__x86_64__) || defined(_M_X64)
void isa_fill_avx2(isa_table *t);
void isa_fill_avx512(isa_table *t);
void simd_fill_avx2(isa_table *t);   /* hand-written kernels over a generic table */
void simd_fill_avx512(isa_table *t);
void simd_fill_float_avx2(isa_table *t);
void simd_k_avx2(mm_fn *small);       /* the k-quants' one-token kernels */
void simd_small_avx512_vnni(mm_fn *small, mm_fn *packed); /* the quantized types' few-token kernels with VNNI */
void simd_fill_float_avx512(isa_table *t);
#endif
#if defined(__aarch64__)
void isa_fill_neon(isa_table *t);
#endif

/* Activation quantization (act.c): fills the quants, scales and sums from a->xf. */
void act_quantize_rows(act_t *a, int t0, int t1);
size_t act_scratch_bytes(enum act_kind kind, int T, int cols);
void act_bind(act_t *a, enum act_kind kind, int T, int cols, const float *xf, void *scratch);

/* Bit-exact dequantization (dequant.c), identical to chord_core.quants. */
void dequant_row(int wt, const uint8_t *row, float *out, int cols);

/* Helpers shared by every translation unit. */
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t ex = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (ex == 0) {
        float f = (float)man * (1.0f / 16777216.0f); /* subnormal: exact */
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (ex == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((ex + 112u) << 23) | (man << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Q4_K / Q5_K: the j-th six-bit scale and min of the 12 packed bytes. */
static inline void k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q3_K: the 16 six-bit scales (minus 32) of the 12 packed bytes. */
static inline void q3k_scales(const uint8_t *p, int8_t out[16]) {
    const uint32_t km1 = 0x03030303u, km2 = 0x0f0f0f0fu;
    uint32_t a0 = rd32(p), a1 = rd32(p + 4), tmp = rd32(p + 8), aux[4];
    aux[0] = (a0 & km2) | (((tmp >> 0) & km1) << 4);
    aux[1] = (a1 & km2) | (((tmp >> 2) & km1) << 4);
    aux[2] = ((a0 >> 4) & km2) | (((tmp >> 4) & km1) << 4);
    aux[3] = ((a1 >> 4) & km2) | (((tmp >> 6) & km1) << 4);
    memcpy(out, aux, 16);
    for (int i = 0; i < 16; i++) out[i] = (int8_t)(out[i] - 32);
}

#endif
