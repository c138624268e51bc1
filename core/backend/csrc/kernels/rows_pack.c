/* The repacking of rows_pack.h: plain C, once per matrix at load. */
#include "rows_pack.h"

#include <string.h>

#include "kernels.h"

typedef struct {
    int n;
    unsigned char at[9], k[9];
} pack_list;

/* Per type, the (at, k) of each vector: what rtile_avx512.h's rt_unpack
 * takes from t16x4(p, rb, at, .)[k]. */
static int pack_list_of(int wt, pack_list *l) {
    static const pack_list q4_0 = {5, {2, 2, 2, 2, 0}, {0, 1, 2, 3, 0}};
    static const pack_list q4_1 = {5, {4, 4, 4, 4, 0}, {0, 1, 2, 3, 0}};
    static const pack_list q5_0 = {6, {6, 6, 6, 6, 0, 0}, {0, 1, 2, 3, 0, 1}};
    static const pack_list q5_1 = {6, {8, 8, 8, 8, 0, 0}, {0, 1, 2, 3, 0, 1}};
    static const pack_list q8_0 = {9, {2, 2, 2, 2, 18, 18, 18, 18, 0}, {0, 1, 2, 3, 0, 1, 2, 3, 0}};
    switch (wt) {
    case W_Q4_0: *l = q4_0; return 1;
    case W_Q4_1: *l = q4_1; return 1;
    case W_Q5_0: *l = q5_0; return 1;
    case W_Q5_1: *l = q5_1; return 1;
    case W_Q8_0: *l = q8_0; return 1;
    default: return 0;
    }
}

int rows_pack_vectors(int wt) {
    pack_list l;
    return pack_list_of(wt, &l) ? l.n : 0;
}

size_t rows_pack_row_bytes(int wt, int rows, int cols) {
    int nvec = rows_pack_vectors(wt);
    if (!nvec || rows % PACK_ROWS) return 0;
    return (size_t)cols / 32 * (size_t)nvec * 4;
}

void rows_pack(int wt, const uint8_t *w, size_t row_bytes, int rows, int cols, uint8_t *out) {
    pack_list l;
    if (!pack_list_of(wt, &l)) return;
    const int nb = cols / 32, bb = WTYPES[wt].block_bytes;
    for (int g = 0; g < rows / PACK_ROWS; g++)
        for (int b = 0; b < nb; b++)
            for (int j = 0; j < l.n; j++) {
                uint8_t *v = out + (((size_t)g * nb + b) * l.n + j) * 64;
                for (int r = 0; r < PACK_ROWS; r++) {
                    const uint8_t *blk = w + (size_t)(g * PACK_ROWS + r) * row_bytes + (size_t)b * bb;
                    memcpy(v + 4 * r, blk + l.at[j] + 4 * l.k[j], 4);
                }
            }
}
