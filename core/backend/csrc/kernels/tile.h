/* Prefill (T > a few tokens): a tile of 16 weight rows is unpacked once into
 * an interleaved layout, then multiplied with blocks of tokens by a
 * register-blocked microkernel (tile_avx512.c, tile_avx2.c), so each
 * unpacked weight is reused by every token.
 *
 * Packed column block (one 32-element block, or one 256-element k-quant
 * super-block, of 16 rows), 64-byte aligned:
 *   q:  for each group of 4 elements, 16 rows x 4 unsigned bytes (64 bytes):
 *       the weights with their type's offset added (Q4_0 +8, Q5_0 +16,
 *       Q8_0 +128, Q3_K +4, Q6_K +32).
 *   32-element types: D[16] (d), M[16] (Q4_1/Q5_1's min, else 0) floats:
 *       value = D * (u - offset) + M.
 *   k-quants: SC[nsub][16] int32 sub-block scales; SC16, the same as two
 *       int16 copies per int32 (for madd); MN[npair][16], pairs of int16
 *       mins per int32 (per-32 types: the 8 mins; per-16 types: 16 of
 *       them, offset * scale for Q3_K/Q6_K); D[16], DM[16] (dmin) floats:
 *       value = D * SC * u - (DM or D) * MN.
 * The kernels keep the integer sums exact (offsets come off in integers)
 * and finish each block in the order kernels.h prescribes. */
#ifndef CHORD_TILE_H
#define CHORD_TILE_H

#include "kernels.h"

#define TILE_ROWS 16

typedef struct {
    int wt;
    int kquant;       /* 256-element super-blocks */
    int nsub, npair;  /* k-quants: scale sub-blocks and min pairs per super-block */
    int groups;       /* groups of 4 elements per block: 8 or 64 */
    int umax;         /* largest unsigned weight: bounds int16 partial sums */
    int offset;
    int has_min;      /* Q4_1, Q5_1, Q2_K, Q4_K, Q5_K: a float min term */
    size_t q_bytes, blk_bytes;
    size_t off_sc, off_sc16, off_mn, off_d, off_m; /* off_m: M or DM */
} tile_fmt;

void tile_format(int wt, tile_fmt *f);

/* res[t * 16 + r] for t < nt, r < 16: the tile's rows against tokens
 * t0 .. t0 + nt - 1. */
typedef void (*tile_kernel)(const tile_fmt *f, const uint8_t *packed, int nblocks, const act_t *a,
                            int t0, int nt, float *res);

/* From how many tokens the tile path beats the one-token kernels, per
 * weight type: those read each group of rows once for all the tokens of a
 * call, so the packing pays only from 8-32 tokens (measured per type and
 * kernel set with a 2048 x 4096 matrix; see README.md). */
/* The same over the column blocks b0 .. b0 + nbk - 1 only, starting from
 * res (accumulate) or from zero: tile_mm then runs every token over a
 * stretch of columns before the next (TILE_K_CHUNK), so that the stretch's
 * packed weights stay in L2 (measured: 16 rows of a 14336-column Q4_K
 * matrix, 308 KB packed, ran at half the speed of 2048-8192 columns). Each
 * row's float operations stay in block order, so the bits are the same. */
typedef void (*tile_kernel_k)(const tile_fmt *f, const uint8_t *packed, int b0, int nbk, const act_t *a,
                              int t0, int nt, float *res, int accumulate);

typedef struct {
    tile_kernel blk32, sub32, sub16; /* 32-element types; per-32 and per-16 k-quants */
    int max_umax;                    /* largest weight the kernels take (255 with VNNI) */
    unsigned char min_tokens[W_COUNT];
    tile_kernel_k blk32_k, sub32_k, sub16_k; /* where set, used instead of the above */
} tile_kernels;

#define TILE_K_CHUNK 4096 /* columns per stretch of the tile_kernel_k kernels */

int tile_min_tokens(const tile_kernels *k, int wt);

/* The tile path for rows r0..r1 of every token; 0 when the kernels cannot
 * take this type (then the caller uses another kernel). */
int tile_mm(const tile_kernels *k, int wt, const uint8_t *w, size_t rb, int r0, int r1,
            const act_t *a, float *out, ptrdiff_t os);

extern const tile_kernels TILE_PORTABLE;
#if defined(__x86_64__) || defined(_M_X64)
extern const tile_kernels TILE_AVX512_VNNI, TILE_AVX2, TILE_AVX2_UNDER_AVX512;
#endif

#endif
