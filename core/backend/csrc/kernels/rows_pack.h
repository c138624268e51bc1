/* Weights repacked at load for the few-token kernels (rtile_packed_avx512.h).
 *
 * Those kernels read a block of 16 rows as vectors whose lane r holds one
 * dword of row r's block: rtile_avx512.h builds them per call with a 4 x 4
 * transpose of 16-byte loads, which costs more than the products at 2-4
 * tokens. Stored in that form once, a block is a few aligned loads:
 *
 *   group G (rows 16G .. 16G + 15), block b, vector j, lane r (4 bytes)
 *   at ((G * nb + b) * nvec + j) * 64 + 4 * r,
 *
 * vector j being dword k of the bytes at offset `at` of each row's block,
 * (at, k) from the type's list in rows_pack.c (the dwords that type's
 * rt_unpack reads). A group's bytes are contiguous: 16 rows of nb * nvec * 4
 * bytes, so group G starts at G * 16 * packed_row_bytes. Only the
 * 32-element types, and only matrices of whole groups. */
#ifndef CHORD_ROWS_PACK_H
#define CHORD_ROWS_PACK_H

#include <stddef.h>
#include <stdint.h>

#define PACK_ROWS 16

/* Vectors per block of 16 rows for internal type wt; 0 if it is not packed. */
int rows_pack_vectors(int wt);

/* Bytes per packed row of a matrix of `rows` x `cols`; 0 when this type
 * or row count is not packed. */
size_t rows_pack_row_bytes(int wt, int rows, int cols);

/* Packs rows 0 .. rows - 1 (rows a multiple of PACK_ROWS; row_bytes apart in
 * w) into out, of rows * (cols / 32) * rows_pack_vectors(wt) * 4 bytes. */
void rows_pack(int wt, const uint8_t *w, size_t row_bytes, int rows, int cols, uint8_t *out);

#endif
