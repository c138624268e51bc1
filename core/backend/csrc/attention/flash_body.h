/* The flash attention kernel, compiled once per ISA.
 *
 * Each including file defines FLASH_UNIT (the function's name) and these
 * primitives, then includes this file under its target attribute, so the
 * same loops run on every path and only the inner blocks differ:
 *   vec_dot_4x4(q[4], k[4], d, s, ss)   s[r*ss + j] = q[r] . k[j]      (4 rows x 4 keys)
 *   vec_pv_4(acc, dv, e, es, v, n)      acc[r*dv + :] += sum_p e[r*es + p] * v[p*dv + :]
 *   vec_max(x, n)                       the largest of x[0..n)
 *   vec_exp_sum(x, n, m)                x = exp(x - m) in place; returns the sum
 *   vec_scale(y, a, n)                  y *= a
 *   vec_half_to_float(dst, src, n)      float16 bits -> float32
 * A file that defines FLASH_FUSED_F16 1 also gives vec_dot_4x4_h and vec_pv_4_h,
 * which read float16 keys/values directly (converting in registers): then an
 * F16 cache is read once, at half the bytes, with no F32 copy of the tile.
 * Otherwise each F16 tile is converted once into scratch. */
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
} FlashTile;

/* Scores of four rows against tile keys i0..i0+3 (clamped to `last`). */
static inline void flash_dot(const FlashTile *t, int64_t dk, const float *const qp[4], int64_t i0, int64_t last,
                             float *s, int64_t ss)
{
#if FLASH_FUSED_F16
    if (t->f16) {
        const uint16_t *kp[4];
        for (int j = 0; j < 4; j++)
            kp[j] = (const uint16_t *)t->k + flash_min64(i0 + j, last) * dk;
        vec_dot_4x4_h(qp, kp, dk, s, ss);
        return;
    }
#endif
    const float *kp[4];
    for (int j = 0; j < 4; j++)
        kp[j] = (const float *)t->k + flash_min64(i0 + j, last) * dk;
    vec_dot_4x4(qp, kp, dk, s, ss);
}

static inline void flash_pv(const FlashTile *t, int64_t dv, float *acc, const float *e, int64_t es, int64_t i0,
                            int64_t n)
{
#if FLASH_FUSED_F16
    if (t->f16) {
        vec_pv_4_h(acc, dv, e, es, (const uint16_t *)t->v + i0 * dv, n);
        return;
    }
#endif
    vec_pv_4(acc, dv, e, es, (const float *)t->v + i0 * dv, n);
}

/* One block of four rows against keys [kt, kt + n) of the current tile. */
static inline void flash_row_block(const FlashJob *job, const FlashUnit *u, int64_t r0, int64_t rows,
                                   const FlashTile *tile, int64_t kt, int64_t n,
                                   float *S, float *acc, float *m, float *l)
{
    const int64_t dk = job->dk, dv = job->dv, ss = flash_score_stride(job);
    int64_t ra[FLASH_ROW_BLOCK], rb[FLASH_ROW_BLOCK];
    int64_t pa = kt + n, pb = kt; /* the keys any of the four rows sees */
    for (int t = 0; t < FLASH_ROW_BLOCK; t++) {
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
    /* past pb a block repeats the last key; its columns are never read */
    for (int64_t p = pa; p < pb; p += 4)
        flash_dot(tile, dk, qp, p - kt, pb - 1 - kt, Sb + (p - kt), ss);

    const float c = job->softcap;
    for (int t = 0; t < FLASH_ROW_BLOCK; t++) {
        const int64_t r = r0 + t;
        float *s = Sb + t * ss; /* s[i]: key kt + i */
        const int64_t a = ra[t] - kt, b = rb[t] - kt, sa = pa - kt, sb = pb - kt;
        if (r >= rows || a >= b) {
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
    flash_pv(tile, dv, acc + r0 * dv, Sb + (pa - kt), ss, pa - kt, pb - pa);
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
        if (tile.f16 && !FLASH_FUSED_F16) {
            vec_half_to_float(Kf, tile.k, n * dk);
            vec_half_to_float(Vf, tile.v, n * dv);
            tile = (FlashTile){Kf, Vf, 0};
        }
        for (int64_t r0 = 0; r0 < rows; r0 += FLASH_ROW_BLOCK)
            flash_row_block(job, u, r0, rows, &tile, kt, n, S, acc, m, l);
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
