/* The flash attention kernel, compiled once per ISA.
 *
 * Each including file defines FLASH_UNIT (the function's name) and these
 * primitives, then includes this file under its target attribute, so the
 * same loops run on every path and only the inner blocks differ:
 *   vec_dot_4x4(q[4], k[4], d, s, ss, nr)  s[r*ss + j] = q[r] . k[j]   (rows r < nr x 4 keys)
 *   vec_pv_4(acc, dv, e, es, v, n, nr)     acc[r*dv + :] += sum_p e[r*es + p] * v[p*dv + :]  (r < nr)
 *   vec_max(x, n)                       the largest of x[0..n)
 *   vec_exp_sum(x, n, m)                x = exp(x - m) in place; returns the sum
 *   vec_scale(y, a, n)                  y *= a
 *   vec_half_to_float(dst, src, n)      float16 bits -> float32
 * A file that defines FLASH_FUSED_F16 1 also gives vec_dot_4x4_h and vec_pv_4_h,
 * which read float16 keys/values directly (converting in registers): then an
 * F16 cache is read once, at half the bytes, with no F32 copy of the tile.
 * Otherwise each F16 tile is converted once into scratch.
 * nr (1..4) is how many of a block's four rows are real (a GQA group of 3 at
 * T = 1 fills three): the blocks compute only those, and each row's arithmetic
 * is the same whatever rows share its block, so a row's bits do not depend on
 * how the job's rows were grouped. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "flash.h"

#ifndef FLASH_FUSED_F16
#define FLASH_FUSED_F16 0
#endif

static inline int64_t flash_max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t flash_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Keys [lo_p, hi_p) query qi sees within the unit's split [k0, k1). */
static inline void flash_row_keys(const FlashJob *job, const FlashUnit *u, int64_t qi,
                                  int64_t *lo_p, int64_t *hi_p)
{
    int64_t qpos = job->start + qi;
    int64_t lo = flash_max64(job->lo, u->k0);
    if (job->window > 0)
        lo = flash_max64(lo, qpos - job->window + 1);
    *lo_p = lo;
    *hi_p = flash_min64(u->k1, qpos + 1);
}

/* Row r of the unit: query q0 + r / group, head kv_head * group + r % group.
 * Padding rows (r >= rows) repeat the last real row. */
static inline int64_t flash_row_query(const FlashUnit *u, int64_t r, int64_t rows, int64_t group)
{
    return u->q0 + (r < rows ? r : rows - 1) / group;
}

static inline const float *flash_q_row(const FlashJob *job, const FlashUnit *u, int64_t r, int64_t rows)
{
    const int64_t g = job->group;
    const int64_t rr = r < rows ? r : rows - 1;
    const int64_t qi = u->q0 + rr / g;
    return job->q + (qi * job->n_head + u->kv_head * g + rr % g) * job->dk;
}

static inline void flash_zero(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.0f;
}

/* One tile of keys as the micro-kernels read it: F32, or F16 on fused paths. */
typedef struct {
    const void *k; /* key kt + i at row i */
    const void *v;
    int f16;
    /* pf: while the first row block's scores are computed, prefetch this
     * tile's values (P.V reads them next) and the next tile's pf_rows keys
     * (rows of pf_vrow and pf_krow bytes) */
    int pf;
    const char *pf_v, *pf_k;
    int64_t pf_vrow, pf_krow, pf_rows;
} FlashTile;

static inline void flash_prefetch_rows(const char *p, int64_t row_bytes, int64_t i0, int64_t n)
{
    for (int64_t i = i0; i < i0 + n; i++)
        for (int64_t at = 0; at < row_bytes; at += 64)
            __builtin_prefetch(p + i * row_bytes + at, 0, 3);
}

/* Scores of a block's nr rows against tile keys [i0, i1), four keys at a time
 * (past i1 a block repeats key i1 - 1; those columns are never read). The
 * loop is compiled once per nr, so the micro-kernel inlines with its rows
 * fixed and consecutive blocks overlap. */
#define FLASH_DOT_KEYS(T, dot, NR)                                                 \
    for (int64_t i = i0; i < i1; i += 4) {                                          \
        if (t->pf) {                                                                \
            flash_prefetch_rows(t->pf_v, t->pf_vrow, i, 4);                         \
            if (i < t->pf_rows)                                                     \
                flash_prefetch_rows(t->pf_k, t->pf_krow, i, 4);                     \
        }                                                                           \
        const T *kp[4];                                                             \
        for (int j = 0; j < 4; j++)                                                 \
            kp[j] = (const T *)t->k + flash_min64(i + j, i1 - 1) * dk;              \
        dot(qp, kp, dk, s + (i - i0), ss, NR);                                      \
    }                                                                               \
    break;
#define FLASH_DOT_ROWS(T, dot)                 \
    switch (nr) {                              \
    case 1: FLASH_DOT_KEYS(T, dot, 1)          \
    case 2: FLASH_DOT_KEYS(T, dot, 2)          \
    case 3: FLASH_DOT_KEYS(T, dot, 3)          \
    default: FLASH_DOT_KEYS(T, dot, 4)         \
    }

static void flash_dot(const FlashTile *t, int64_t dk, const float *const qp[4], int nr, int64_t i0, int64_t i1,
                      float *s, int64_t ss)
{
#if FLASH_FUSED_F16
    if (t->f16) {
        FLASH_DOT_ROWS(uint16_t, vec_dot_4x4_h)
        return;
    }
#endif
    FLASH_DOT_ROWS(float, vec_dot_4x4)
}

static inline void flash_pv(const FlashTile *t, int64_t dv, float *acc, const float *e, int64_t es, int64_t i0,
                            int64_t n, int nr)
{
#if FLASH_FUSED_F16
    if (t->f16) {
        vec_pv_4_h(acc, dv, e, es, (const uint16_t *)t->v + i0 * dv, n, nr);
        return;
    }
#endif
    vec_pv_4(acc, dv, e, es, (const float *)t->v + i0 * dv, n, nr);
}

/* One block of four rows against keys [kt, kt + n) of the current tile. */
static inline void flash_row_block(const FlashJob *job, const FlashUnit *u, int64_t r0, int64_t rows,
                                   const FlashTile *tile, int64_t kt, int64_t n,
                                   float *S, float *acc, float *m, float *l)
{
    const int64_t dk = job->dk, dv = job->dv, ss = flash_score_stride(job);
    const int nr = rows - r0 < FLASH_ROW_BLOCK ? (int)(rows - r0) : FLASH_ROW_BLOCK;
    int64_t ra[FLASH_ROW_BLOCK], rb[FLASH_ROW_BLOCK];
    int64_t pa = kt + n, pb = kt; /* the keys any of the block's rows sees */
    for (int t = 0; t < nr; t++) {
        flash_row_keys(job, u, flash_row_query(u, r0 + t, rows, job->group), &ra[t], &rb[t]);
        ra[t] = flash_max64(ra[t], kt);
        rb[t] = flash_min64(rb[t], kt + n);
        if (ra[t] < rb[t]) {
            pa = flash_min64(pa, ra[t]);
            pb = flash_max64(pb, rb[t]);
        }
    }
    if (pa >= pb)
        return;

    const float *qp[FLASH_ROW_BLOCK];
    for (int t = 0; t < FLASH_ROW_BLOCK; t++)
        qp[t] = flash_q_row(job, u, r0 + t, rows);
    float *Sb = S + r0 * ss;
    flash_dot(tile, dk, qp, nr, pa - kt, pb - kt, Sb + (pa - kt), ss);

    const float c = job->softcap;
    for (int t = 0; t < nr; t++) {
        const int64_t r = r0 + t;
        float *s = Sb + t * ss; /* s[i]: key kt + i */
        const int64_t a = ra[t] - kt, b = rb[t] - kt, sa = pa - kt, sb = pb - kt;
        if (a >= b) {
            flash_zero(s + sa, sb - sa);
            continue;
        }
        if (c > 0.0f)
            for (int64_t i = a; i < b; i++)
                s[i] = tanhf(s[i] / c) * c;
        const float mx = vec_max(s + a, b - a);
        if (mx > m[r]) {
            /* a new maximum: rescale what was summed so far */
            if (m[r] != -INFINITY) {
                const float scale = expf(m[r] - mx);
                l[r] *= scale;
                vec_scale(acc + r * dv, scale, dv);
            }
            m[r] = mx;
        }
        l[r] += vec_exp_sum(s + a, b - a, m[r]);
        flash_zero(s + sa, a - sa);
        flash_zero(s + b, sb - b);
    }
    flash_pv(tile, dv, acc + r0 * dv, Sb + (pa - kt), ss, pa - kt, pb - pa, nr);
}

void FLASH_UNIT(const FlashJob *job, const FlashUnit *u, float *scratch)
{
    const int64_t g = job->group, dk = job->dk, dv = job->dv, KT = job->key_tile;
    const int64_t rows = (u->q1 - u->q0) * g;
    const int64_t R = flash_rows_padded(job);
    float *S = scratch;
    float *Kf = S + R * flash_score_stride(job);
    float *Vf = Kf + KT * dk;
    float *acc = Vf + KT * dv;
    float *m = acc + R * dv;
    float *l = m + R;

    for (int64_t r = 0; r < R; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    flash_zero(acc, R * dv);

    /* the keys any row of this unit sees */
    int64_t kmin, kmax, unused;
    flash_row_keys(job, u, u->q0, &kmin, &unused);
    flash_row_keys(job, u, u->q1 - 1, &unused, &kmax);

    const size_t esize = job->kv_f16 ? 2 : 4;
    const char *kbase = (const char *)job->k + (size_t)(u->kv_head * job->cap) * dk * esize;
    const char *vbase = (const char *)job->v + (size_t)(u->kv_head * job->cap) * dv * esize;

    for (int64_t kt = kmin; kt < kmax; kt += KT) {
        const int64_t n = flash_min64(KT, kmax - kt);
        FlashTile tile = {kbase + (size_t)(kt * dk) * esize, vbase + (size_t)(kt * dv) * esize, job->kv_f16};
        tile.pf = 1;
        tile.pf_v = tile.v;
        tile.pf_k = (const char *)tile.k + (size_t)(n * dk) * esize;
        tile.pf_vrow = dv * (int64_t)esize;
        tile.pf_krow = dk * (int64_t)esize;
        tile.pf_rows = flash_min64(KT, kmax - kt - n);
        if (tile.f16 && !FLASH_FUSED_F16) {
            vec_half_to_float(Kf, tile.k, n * dk);
            vec_half_to_float(Vf, tile.v, n * dv);
            tile = (FlashTile){Kf, Vf, 0};
        }
        for (int64_t r0 = 0; r0 < rows; r0 += FLASH_ROW_BLOCK) {
            flash_row_block(job, u, r0, rows, &tile, kt, n, S, acc, m, l);
            tile.pf = 0; /* asked for once */
        }
    }

    for (int64_t r = 0; r < rows; r++) {
        const int64_t qi = u->q0 + r / g, j = r % g;
        const float *ar = acc + r * dv;
        if (u->partial) {
            float *dst = u->partial + r * (2 + dv);
            dst[0] = m[r];
            dst[1] = l[r];
            for (int64_t d = 0; d < dv; d++)
                dst[2 + d] = ar[d];
        } else {
            float *dst = job->out + qi * job->n_head * dv + (u->kv_head * g + j) * dv;
            const float inv = 1.0f / l[r];
            for (int64_t d = 0; d < dv; d++)
                dst[d] = ar[d] * inv;
        }
    }
}
