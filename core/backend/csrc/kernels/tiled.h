/* Included once by an ISA's table file: wraps each quantized type's kernel
 * so that products of many tokens take the tile path (tile.h) and the rest
 * the one-token kernels in `small`. Usage: tiled_begin(t) (copies the
 * table's kernels into small), replace entries of small, tiled_end(t, k). */
#include "tile.h"

static mm_fn small[W_COUNT];
static const tile_kernels *tiles;

#define MM_TILED(WT)                                                                           \
    static void mm_tiled_##WT(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,     \
                              float *out, ptrdiff_t os) {                                      \
        if (a->T >= tile_min_tokens(tiles, WT) && tile_mm(tiles, WT, w, rb, r0, r1, a, out, os)) return; \
        small[WT](w, rb, r0, r1, a, out, os);                                                  \
    }

MM_TILED(W_Q4_0)
MM_TILED(W_Q4_1)
MM_TILED(W_Q5_0)
MM_TILED(W_Q5_1)
MM_TILED(W_Q8_0)
MM_TILED(W_Q2_K)
MM_TILED(W_Q3_K)
MM_TILED(W_Q4_K)
MM_TILED(W_Q5_K)
MM_TILED(W_Q6_K)

static void tiled_begin(const isa_table *t) { memcpy(small, t->mm, sizeof small); }

static void tiled_end(isa_table *t, const tile_kernels *k) {
    static const int tiled[] = {W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0,
                                W_Q2_K, W_Q3_K, W_Q4_K, W_Q5_K, W_Q6_K};
    static const mm_fn tiled_fn[] = {mm_tiled_W_Q4_0, mm_tiled_W_Q4_1, mm_tiled_W_Q5_0,
                                     mm_tiled_W_Q5_1, mm_tiled_W_Q8_0, mm_tiled_W_Q2_K,
                                     mm_tiled_W_Q3_K, mm_tiled_W_Q4_K, mm_tiled_W_Q5_K,
                                     mm_tiled_W_Q6_K};
    tiles = k;
    for (size_t i = 0; i < sizeof tiled / sizeof tiled[0]; i++) t->mm[tiled[i]] = tiled_fn[i];
}
