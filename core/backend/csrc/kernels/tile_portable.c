/* Portable microkernels of the tile path (tile.h): the same arithmetic as
 * tile_avx512.c in plain C, written so that the loop over the tile's 16
 * rows vectorizes (SSE2 here, NEON on arm64), finishing each block as the
 * portable one-token kernels of generic.h do (kernels.h). */
#include "tile.h"

#define NTP 4 /* tokens per pass over the packed tile */

/* One level of quants (q, its per-16 and per-32 sums) against the tile:
 * is (sub-block-scaled products) and ms (mins, or offsets times scales). */
static void kquant_level(const tile_fmt *f, const uint8_t *pk, int i, const int8_t *q, const int16_t *s16,
                         const int16_t *s32, const act_t *a, int t0, int nt, int32_t is[NTP][16],
                         int32_t ms[NTP][16]) {
    int gsub = 64 / f->nsub, per32 = f->nsub == 8;
    const int32_t *sc = (const int32_t *)(pk + f->off_sc), *mn = (const int32_t *)(pk + f->off_mn);
    for (int t = 0; t < nt; t++)
        for (int row = 0; row < 16; row++) is[t][row] = ms[t][row] = 0;
    for (int s = 0; s < f->nsub; s++) {
        int32_t r[NTP][16] = {{0}};
        for (int g = s * gsub; g < (s + 1) * gsub; g++) {
            const uint8_t *w = pk + 64 * g;
            for (int t = 0; t < nt; t++) {
                const int8_t *x = q + (size_t)(t0 + t) * a->cols + QK_K * i + 4 * g;
                for (int row = 0; row < 16; row++)
                    r[t][row] += w[4 * row] * x[0] + w[4 * row + 1] * x[1] + w[4 * row + 2] * x[2] +
                                 w[4 * row + 3] * x[3];
            }
        }
        for (int t = 0; t < nt; t++)
            for (int row = 0; row < 16; row++) is[t][row] += r[t][row] * sc[16 * s + row];
    }
    for (int t = 0; t < nt; t++) {
        const int16_t *bs = per32 ? s32 + (size_t)(t0 + t) * (a->cols / 32) + 8 * i
                                  : s16 + (size_t)(t0 + t) * (a->cols / 16) + 16 * i;
        for (int p = 0; p < f->npair; p++)
            for (int row = 0; row < 16; row++) {
                int32_t m = mn[16 * p + row];
                ms[t][row] += (int16_t)(m & 0xFFFF) * bs[2 * p] + (int16_t)(m >> 16) * bs[2 * p + 1];
            }
    }
}

static void t_kquant(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0, int nt,
                     float *res) {
    float acc[NTP][16] = {{0}};
    for (int i = 0; i < nb; i++, pk += f->blk_bytes) {
        const float *d = (const float *)(pk + f->off_d), *dm = (const float *)(pk + f->off_m);
        int32_t is1[NTP][16], ms1[NTP][16], is2[NTP][16], ms2[NTP][16];
        kquant_level(f, pk, i, a->q, a->sum, a->sum32, a, t0, nt, is1, ms1);
        kquant_level(f, pk, i, a->q2, a->sum2, a->sum32_2, a, t0, nt, is2, ms2);
        for (int t = 0; t < nt; t++) {
            float dx = a->d[(size_t)(t0 + t) * nb + i];
            for (int row = 0; row < 16; row++) {
                if (!f->has_min) { /* Q3_K / Q6_K: the offsets' terms are integers */
                    float v = two_level(is1[t][row] - ms1[t][row], is2[t][row] - ms2[t][row]);
                    acc[t][row] = acc[t][row] + v * (d[row] * dx);
                } else {
                    acc[t][row] = acc[t][row] + two_level(is1[t][row], is2[t][row]) * (d[row] * dx);
                    acc[t][row] = acc[t][row] - two_level(ms1[t][row], ms2[t][row]) * (dm[row] * dx);
                }
            }
        }
    }
    for (int t = 0; t < nt; t++) memcpy(res + 16 * t, acc[t], sizeof acc[t]);
}

static void t_blk32(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0, int nt,
                    float *res) {
    float acc[NTP][16] = {{0}};
    for (int i = 0; i < nb; i++, pk += f->blk_bytes) {
        const float *d = (const float *)(pk + f->off_d), *m = (const float *)(pk + f->off_m);
        int32_t r[NTP][16] = {{0}}, r2[NTP][16] = {{0}};
        for (int g = 0; g < 8; g++) {
            const uint8_t *q = pk + 64 * g;
            for (int t = 0; t < nt; t++) {
                const int8_t *x = a->q + (size_t)(t0 + t) * a->cols + 32 * i + 4 * g;
                const int8_t *x2 = a->q2 + (size_t)(t0 + t) * a->cols + 32 * i + 4 * g;
                for (int row = 0; row < 16; row++) {
                    r[t][row] += q[4 * row] * x[0] + q[4 * row + 1] * x[1] + q[4 * row + 2] * x[2] +
                                 q[4 * row + 3] * x[3];
                    r2[t][row] += q[4 * row] * x2[0] + q[4 * row + 1] * x2[1] + q[4 * row + 2] * x2[2] +
                                  q[4 * row + 3] * x2[3];
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            size_t xb = (size_t)(t0 + t) * nb + i;
            int32_t off = f->offset * a->bsum[xb];
            for (int row = 0; row < 16; row++) {
                int32_t it = 256 * r[t][row] + r2[t][row] - off;
                acc[t][row] = acc[t][row] + (float)it * (d[row] * a->d[xb]);
                if (f->has_min) acc[t][row] = acc[t][row] + m[row] * a->ds[xb];
            }
        }
    }
    for (int t = 0; t < nt; t++) memcpy(res + 16 * t, acc[t], sizeof acc[t]);
}

#define TILE_ENTRY(NAME, KERN)                                                                 \
    static void NAME(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0,     \
                     int nt, float *res) {                                                     \
        for (int t = 0; t < nt; t += NTP)                                                      \
            KERN(f, pk, nb, a, t0 + t, nt - t < NTP ? nt - t : NTP, res + 16 * t);             \
    }

TILE_ENTRY(tile_blk32, t_blk32)
TILE_ENTRY(tile_kq, t_kquant)

/* The portable one-token kernels are slow enough that tiles pay from 2 tokens. */
const tile_kernels TILE_PORTABLE = {tile_blk32, tile_kq, tile_kq, 255,
                                    {[W_Q4_0] = 2, [W_Q4_1] = 2, [W_Q5_0] = 2, [W_Q5_1] = 2, [W_Q8_0] = 2,
                                     [W_Q2_K] = 2, [W_Q3_K] = 2, [W_Q4_K] = 2, [W_Q5_K] = 2, [W_Q6_K] = 2}};
