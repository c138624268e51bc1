/* Activation quantization: float32 x -> two 8-bit levels per block
 * (kernels.h), per 32 elements for the 32-element weight types and per
 * 256 for the k-quants. d1 = amax / 127, q = round-half-even(x / d1), then
 * the residual at d2 = d1 / 256: q2 = round-half-even((x - d1 * q) / d2),
 * clamped to +-127, all in exact IEEE float32 steps (fp-contract is off),
 * so tests can replicate it in NumPy bit for bit. */
#include <math.h>

#include "act_x86.h"

/* Inlined into each clone of act_quantize_rows (below), so that they are
 * compiled for its registers too. */
#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

/* Round half to even for |v| < 2^22 without a libm call (vectorizes). */
static inline int nearest_int(float v) {
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clamp127(int v) { return v > 127 ? 127 : v < -127 ? -127 : v; }

/* Returns d2; fills the two levels of n elements. */
ALWAYS_INLINE static inline float quantize_block(const float *x, int8_t *q, int8_t *q2, int n) {
    float amax = 0.f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.f;
    float id = d != 0.f ? 1.f / d : 0.f, id2 = id * 256.f;
    /* a NaN or inf in x gives garbage here, never an out-of-range value */
    for (int i = 0; i < n; i++) {
        int v = clamp127(nearest_int(x[i] * id));
        float r = x[i] - d * (float)v;
        q[i] = (int8_t)v;
        q2[i] = (int8_t)clamp127(nearest_int(r * id2));
    }
    return d * (1.f / 256.f);
}

ALWAYS_INLINE static inline void quantize_q8_32(act_t *a, int t) {
    const float *x = a->xf + (size_t)t * a->cols;
    int8_t *q = a->q + (size_t)t * a->cols, *q2 = a->q2 + (size_t)t * a->cols;
    int nb = a->cols / 32;
    for (int b = 0; b < nb; b++) {
        size_t i = (size_t)t * nb + b;
        a->d[i] = quantize_block(x + 32 * b, q + 32 * b, q2 + 32 * b, 32);
        int s = 0;
        for (int k = 0; k < 32; k++) s += 256 * q[32 * b + k] + q2[32 * b + k];
        a->bsum[i] = s;
        a->ds[i] = a->d[i] * (float)s;
    }
}

ALWAYS_INLINE static inline void sums_k(const int8_t *qb, int16_t *s16, int16_t *s32) {
    for (int k = 0; k < 16; k++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += qb[16 * k + i];
        s16[k] = (int16_t)s;
    }
    for (int k = 0; k < 8; k++) s32[k] = (int16_t)(s16[2 * k] + s16[2 * k + 1]);
}

ALWAYS_INLINE static inline void quantize_q8_k(act_t *a, int t) {
    const float *x = a->xf + (size_t)t * a->cols;
    int8_t *q = a->q + (size_t)t * a->cols, *q2 = a->q2 + (size_t)t * a->cols;
    int nb = a->cols / QK_K;
    for (int b = 0; b < nb; b++) {
        a->d[(size_t)t * nb + b] = quantize_block(x + QK_K * b, q + QK_K * b, q2 + QK_K * b, QK_K);
        size_t s16 = (size_t)t * (a->cols / 16) + 16 * b, s32 = (size_t)t * (a->cols / 32) + 8 * b;
        sums_k(q + QK_K * b, a->sum + s16, a->sum32 + s32);
        sums_k(q2 + QK_K * b, a->sum2 + s16, a->sum32_2 + s32);
    }
}

/* The tile kernels' copy of the quants (qt): for each block of ACT_TILE_T
 * tokens and each group of 4 elements, the group's 4 bytes of q of each
 * token, then of q2: one 32-byte run holds everything a microkernel
 * broadcasts for a group. Read from q and q2 directly, a pass of 4 tokens
 * has 8 streams cols bytes apart (a multiple of 2048: the streams share
 * L1 sets), and the tile kernels ran at half their speed (Zen 5). Tokens
 * past T in the last block are zeros. */
void act_tile_copy(act_t *a, int t) {
    const int ng = a->cols / 4, slot = t % ACT_TILE_T;
    const int8_t *q = a->q + (size_t)t * a->cols, *q2 = a->q2 + (size_t)t * a->cols;
    int8_t *dst = a->qt + (size_t)(t / ACT_TILE_T) * ng * (8 * ACT_TILE_T) + 4 * slot;
    for (int g = 0; g < ng; g++, dst += 8 * ACT_TILE_T) {
        memcpy(dst, q + 4 * g, 4);
        memcpy(dst + 4 * ACT_TILE_T, q2 + 4 * g, 4);
    }
}

static void tile_zero_tail(act_t *a) {
    const int ng = a->cols / 4, last = a->T % ACT_TILE_T;
    if (!last) return;
    int8_t *blk = a->qt + (size_t)(a->T / ACT_TILE_T) * ng * (8 * ACT_TILE_T);
    for (int g = 0; g < ng; g++)
        for (int lv = 0; lv < 2; lv++)
            memset(blk + (size_t)g * 8 * ACT_TILE_T + lv * 4 * ACT_TILE_T + 4 * last, 0, 4 * (ACT_TILE_T - last));
}

/* Every step is one IEEE float32 operation (fp-contract is off), so builds
 * for wider registers give the very same quants: GCC clones this for AVX2
 * and AVX-512 and picks by the CPU (glibc ifunc), as it vectorizes these
 * loops 2-4x wider than baseline x86-64 allows. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void act_quantize_rows(act_t *a, int t0, int t1) {
#if defined(ACT_X86)
    if (a->kind != ACT_F32 && act_avx512_usable()) {
        act_quantize_rows_avx512(a, t0, t1);
    } else
#endif
    {
        for (int t = t0; t < t1; t++) {
            if (a->kind == ACT_Q8_32) quantize_q8_32(a, t);
            else if (a->kind == ACT_Q8_K) quantize_q8_k(a, t);
            if (a->qt) act_tile_copy(a, t);
        }
    }
    if (a->qt && t1 == a->T) tile_zero_tail(a);
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Carves the arrays of `a` out of `base` (64-byte aligned pieces); with
 * base NULL only counts the bytes. */
static size_t carve(act_t *a, char *base) {
    size_t n = (size_t)a->T * a->cols, off = 0;
    size_t nt = (size_t)(a->T + ACT_TILE_T - 1) / ACT_TILE_T * ACT_TILE_T * a->cols * 2;
    int tiled = a->T >= ACT_TILE_MIN_T && a->kind != ACT_F32;
#define PIECE(field, type, count)                                                              \
    do {                                                                                       \
        if (base) a->field = (type *)(base + off);                                             \
        off += up64((count) * sizeof(type));                                                   \
    } while (0)
    if (a->kind == ACT_Q8_32) {
        PIECE(q, int8_t, n);
        PIECE(q2, int8_t, n);
        PIECE(d, float, n / 32);
        PIECE(ds, float, n / 32);
        PIECE(bsum, int32_t, n / 32);
    } else if (a->kind == ACT_Q8_K) {
        PIECE(q, int8_t, n);
        PIECE(q2, int8_t, n);
        PIECE(d, float, n / QK_K);
        PIECE(sum, int16_t, n / 16);
        PIECE(sum2, int16_t, n / 16);
        PIECE(sum32, int16_t, n / 32);
        PIECE(sum32_2, int16_t, n / 32);
    }
    if (tiled) PIECE(qt, int8_t, nt);
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
