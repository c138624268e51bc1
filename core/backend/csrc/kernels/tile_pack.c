/* The tile path's packer and driver (see tile.h): portable C, shared by
 * every ISA's microkernels. */
#include <stdlib.h>

#include "tile.h"

#define KFN(name) name##_pack
#include "unpack.h"

void tile_format(int wt, tile_fmt *f) {
    static const int offsets[W_COUNT] = {[W_Q4_0] = 8, [W_Q5_0] = 16, [W_Q8_0] = 128,
                                         [W_Q3_K] = 4, [W_Q6_K] = 32};
    static const int umax[W_COUNT] = {[W_Q4_0] = 15, [W_Q4_1] = 15, [W_Q5_0] = 31, [W_Q5_1] = 31,
                                      [W_Q8_0] = 255, [W_Q2_K] = 3, [W_Q3_K] = 7, [W_Q4_K] = 15,
                                      [W_Q5_K] = 31, [W_Q6_K] = 63};
    memset(f, 0, sizeof *f);
    f->wt = wt;
    f->kquant = WTYPES[wt].act == ACT_Q8_K;
    f->offset = offsets[wt];
    f->umax = umax[wt];
    f->has_min = wt == W_Q4_1 || wt == W_Q5_1 || wt == W_Q2_K || wt == W_Q4_K || wt == W_Q5_K;
    f->groups = WTYPES[wt].block_elems / 4;
    f->q_bytes = (size_t)f->groups * 64;
    if (!f->kquant) {
        f->off_d = f->q_bytes;
        f->off_m = f->off_d + 64;
        f->blk_bytes = f->off_m + 64;
        return;
    }
    int per32 = wt == W_Q4_K || wt == W_Q5_K;
    f->nsub = per32 ? 8 : 16;
    f->npair = f->nsub / 2;
    f->off_sc = f->q_bytes;
    f->off_sc16 = f->off_sc + (size_t)f->nsub * 64;
    f->off_mn = f->off_sc16 + (size_t)f->nsub * 64;
    f->off_d = f->off_mn + (size_t)f->npair * 64;
    f->off_m = f->off_d + 64;
    f->blk_bytes = f->off_m + 64;
}

/* Row r's n weights, offset to unsigned, as n / 4 dwords 64 bytes apart. */
static void put_q(uint8_t *q, int r, const int8_t *v, int n, int offset) {
    uint8_t u[QK_K];
    for (int e = 0; e < n; e++) u[e] = (uint8_t)(v[e] + offset);
    for (int g = 0; g < n / 4; g++) memcpy(q + 64 * g + 4 * r, u + 4 * g, 4);
}

static void pack_blk32(const tile_fmt *f, const uint8_t *b, int r, uint8_t *dst) {
    blk32_pack u;
    switch (f->wt) {
    case W_Q4_0: unpack_q4_0_pack(b, &u); break;
    case W_Q4_1: unpack_q4_1_pack(b, &u); break;
    case W_Q5_0: unpack_q5_0_pack(b, &u); break;
    case W_Q5_1: unpack_q5_1_pack(b, &u); break;
    default: unpack_q8_0_pack(b, &u); break;
    }
    put_q(dst, r, u.q, 32, f->offset);
    ((float *)(dst + f->off_d))[r] = u.d;
    ((float *)(dst + f->off_m))[r] = u.m;
}

static inline void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Q4_K / Q6_K (the k-quants of the common Q4_K_M files) go straight from the
 * block to the tile layout, four elements at a time: the nibbles (and Q6_K's
 * two high bits) of 4 consecutive bytes are one group, and their unsigned
 * values are the stored ones (Q6_K's offset 32 included). Through the
 * element-wise unpacking the packing took ~6% of a 512-token product. */
static void put_q4_k(uint8_t *dst, int r, const uint8_t *b) {
    const uint8_t *qs = b + 16;
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 8; k++) {
            uint32_t w = rd32(qs + 32 * j + 4 * k);
            st32(dst + 64 * (16 * j + k) + 4 * r, w & 0x0F0F0F0Fu);
            st32(dst + 64 * (16 * j + 8 + k) + 4 * r, (w >> 4) & 0x0F0F0F0Fu);
        }
}

static void put_q6_k(uint8_t *dst, int r, const uint8_t *b) {
    const uint32_t lo = 0x0F0F0F0Fu, two = 0x03030303u;
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        uint8_t *d = dst + 64 * 32 * h + 4 * r;
        for (int k = 0; k < 8; k++) {
            uint32_t a = rd32(ql + 4 * k), c = rd32(ql + 32 + 4 * k), hb = rd32(qh + 4 * k);
            st32(d + 64 * k, (a & lo) | ((hb & two) << 4));
            st32(d + 64 * (8 + k), (c & lo) | (((hb >> 2) & two) << 4));
            st32(d + 64 * (16 + k), ((a >> 4) & lo) | (((hb >> 4) & two) << 4));
            st32(d + 64 * (24 + k), ((c >> 4) & lo) | (((hb >> 6) & two) << 4));
        }
    }
}

static void pack_kquant(const tile_fmt *f, const uint8_t *b, int r, uint8_t *dst) {
    blkk_pack u;
    switch (f->wt) {
    case W_Q2_K: unpack_q2_k_pack(b, &u); break;
    case W_Q3_K: unpack_q3_k_pack(b, &u); break;
    case W_Q4_K: k4_scales_pack(b, &u); break;
    case W_Q5_K: unpack_q5_k_pack(b, &u); break;
    default:
        u.d = f16_to_f32(rd16(b + 208));
        u.dmin = 0.f;
        for (int j = 0; j < 16; j++) {
            u.sc[j] = (int8_t)b[192 + j];
            u.mn[j] = 0;
        }
        break;
    }
    if (f->wt == W_Q4_K) put_q4_k(dst, r, b);
    else if (f->wt == W_Q6_K) put_q6_k(dst, r, b);
    else put_q(dst, r, u.q, QK_K, f->offset);
    int32_t *sc = (int32_t *)(dst + f->off_sc), *sc16 = (int32_t *)(dst + f->off_sc16);
    int32_t *mn = (int32_t *)(dst + f->off_mn);
    int step = 16 / f->nsub; /* unpack gives per-16 values; per-32 types repeat them */
    int16_t mins[16];
    for (int s = 0; s < f->nsub; s++) {
        int v = u.sc[s * step];
        sc[s * 16 + r] = v;
        sc16[s * 16 + r] = (int32_t)(((uint32_t)(uint16_t)v << 16) | (uint16_t)v);
        mins[s] = (int16_t)(u.mn[s * step] + f->offset * v);
    }
    for (int p = 0; p < f->npair; p++)
        mn[p * 16 + r] = (int32_t)(((uint32_t)(uint16_t)mins[2 * p + 1] << 16) | (uint16_t)mins[2 * p]);
    ((float *)(dst + f->off_d))[r] = u.d;
    ((float *)(dst + f->off_m))[r] = u.dmin;
}

int tile_min_tokens(const tile_kernels *k, int wt) { return k->min_tokens[wt]; }

/* Rows beyond nrows are zero (they compute zeros nobody reads). Row after
 * row, each read front to back: the weights come from DRAM, and the
 * hardware prefetchers follow one stream, not 16 rows in lockstep. */
static void tile_pack(const tile_fmt *f, const uint8_t *w, size_t rb, int nrows, int nblocks,
                      uint8_t *dst) {
    if (nrows < TILE_ROWS) memset(dst, 0, f->blk_bytes * nblocks);
    int bb = WTYPES[f->wt].block_bytes;
    for (int r = 0; r < nrows; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        uint8_t *d = dst;
        for (int i = 0; i < nblocks; i++, b += bb, d += f->blk_bytes) {
            if (f->kquant) pack_kquant(f, b, r, d);
            else pack_blk32(f, b, r, d);
        }
    }
}

/* Each thread packs into its own buffer, kept between calls (and keeps
 * the results of the chunked kernels in another). */
typedef struct {
    uint8_t *p;
    size_t cap;
} thread_buf;

static _Thread_local thread_buf pack_buf, acc_buf;

static void *buffer(thread_buf *b, size_t n) {
    if (n <= b->cap) return b->p;
    free(b->p);
    b->cap = 0;
    if (posix_memalign((void **)&b->p, 64, n) != 0) return b->p = NULL;
    b->cap = n;
    return b->p;
}

#define TOKEN_BLOCK 48 /* tokens per microkernel call: results fit a small buffer */
#define TILE_GROUP 4 /* tiles per pass of the chunked kernels (tile_rows_chunked) */

static void tile_rows_whole(tile_kernel kern, const tile_fmt *f, const uint8_t *w, size_t rb, int r0, int r1,
                            const act_t *a, float *out, ptrdiff_t os, int nblocks, uint8_t *buf) {
    float res[TOKEN_BLOCK * TILE_ROWS];
    for (int rt = r0; rt < r1; rt += TILE_ROWS) {
        int n = r1 - rt < TILE_ROWS ? r1 - rt : TILE_ROWS;
        tile_pack(f, w + (size_t)rt * rb, rb, n, nblocks, buf);
        for (int t0 = 0; t0 < a->T; t0 += TOKEN_BLOCK) {
            int nt = a->T - t0 < TOKEN_BLOCK ? a->T - t0 : TOKEN_BLOCK;
            kern(f, buf, nblocks, a, t0, nt, res);
            for (int t = 0; t < nt; t++)
                memcpy(out + (ptrdiff_t)(t0 + t) * os + rt, res + t * TILE_ROWS, n * sizeof(float));
        }
    }
}

/* A tile's results (res: T x 16) into out's rows rt .. rt + n - 1. */
static void put_rows(const act_t *a, const float *res, int rt, int n, float *out, ptrdiff_t os) {
    if (n == TILE_ROWS) /* a constant size: the compiler inlines the copy */
        for (int t = 0; t < a->T; t++)
            memcpy(out + (ptrdiff_t)t * os + rt, res + (size_t)t * TILE_ROWS, TILE_ROWS * sizeof(float));
    else
        for (int t = 0; t < a->T; t++)
            memcpy(out + (ptrdiff_t)t * os + rt, res + (size_t)t * TILE_ROWS, n * sizeof(float));
}

/* TILE_GROUP tiles at a time, each block of tokens through all of them in
 * turn: the tokens' activations, read from L3 for the first tile, are in L2
 * for the others (the activations of 512 tokens are 2-15 MB, read at ~20
 * GB/s with one tile per pass; 4 tiles: 2048 x 14336 at T=512, one thread,
 * Q4_K 101 -> 98 ms, Q6_K 125 -> 114; narrower matrices unchanged). */
static void tile_rows_chunked(tile_kernel_k kern, const tile_fmt *f, const uint8_t *w, size_t rb, int r0,
                              int r1, const act_t *a, float *out, ptrdiff_t os, int nblocks, uint8_t *buf,
                              float *res) {
    const int kb = TILE_K_CHUNK / WTYPES[f->wt].block_elems;
    const size_t tile_bytes = f->blk_bytes * nblocks, res_floats = (size_t)a->T * TILE_ROWS;
    for (int rg = r0; rg < r1; rg += TILE_GROUP * TILE_ROWS) {
        int ntiles = 0;
        for (int rt = rg; rt < r1 && ntiles < TILE_GROUP; rt += TILE_ROWS, ntiles++) {
            int n = r1 - rt < TILE_ROWS ? r1 - rt : TILE_ROWS;
            tile_pack(f, w + (size_t)rt * rb, rb, n, nblocks, buf + ntiles * tile_bytes);
        }
        for (int b0 = 0; b0 < nblocks; b0 += kb) {
            int nbk = nblocks - b0 < kb ? nblocks - b0 : kb;
            for (int t0 = 0; t0 < a->T; t0 += TOKEN_BLOCK) {
                int nt = a->T - t0 < TOKEN_BLOCK ? a->T - t0 : TOKEN_BLOCK;
                for (int g = 0; g < ntiles; g++)
                    kern(f, buf + g * tile_bytes, b0, nbk, a, t0, nt, res + g * res_floats + (size_t)t0 * TILE_ROWS,
                         b0 > 0);
            }
        }
        for (int g = 0; g < ntiles; g++) {
            int rt = rg + g * TILE_ROWS, n = r1 - rt < TILE_ROWS ? r1 - rt : TILE_ROWS;
            put_rows(a, res + g * res_floats, rt, n, out, os);
        }
    }
}

int tile_mm(const tile_kernels *k, int wt, const uint8_t *w, size_t rb, int r0, int r1,
            const act_t *a, float *out, ptrdiff_t os) {
    tile_fmt f;
    tile_format(wt, &f);
    if (!f.umax || f.umax > k->max_umax) return 0;
    tile_kernel kern = !f.kquant ? k->blk32 : f.nsub == 8 ? k->sub32 : k->sub16;
    tile_kernel_k kk = !f.kquant ? k->blk32_k : f.nsub == 8 ? k->sub32_k : k->sub16_k;
    int nblocks = a->cols / WTYPES[wt].block_elems;
    uint8_t *buf = buffer(&pack_buf, f.blk_bytes * nblocks * (kk ? TILE_GROUP : 1));
    if (!buf) return 0;
    if (kk) {
        float *res = buffer(&acc_buf, (size_t)a->T * TILE_ROWS * TILE_GROUP * sizeof(float));
        if (!res) return 0;
        tile_rows_chunked(kk, &f, w, rb, r0, r1, a, out, os, nblocks, buf, res);
        return 1;
    }
    if (!kern) return 0;
    tile_rows_whole(kern, &f, w, rb, r0, r1, a, out, os, nblocks, buf);
    return 1;
}
