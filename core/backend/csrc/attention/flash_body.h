/* The flash attention kernel, compiled once per ISA.
 *
 * Each including file defines FLASH_UNIT (the function's name) and these
 * vector primitives, then includes this file under its target attribute:
 *   float vec_dot(const float *a, const float *b, int64_t n);
 *   void  vec_dot4(const float *q, const float *k, int64_t stride, int64_t n, float *s4);
 *   void  vec_axpy(float *y, float a, const float *x, int64_t n);      y += a * x
 *   void  vec_axpy4(float *y, const float *e4, const float *x, int64_t stride, int64_t n);
 *   void  vec_scale(float *y, float a, int64_t n);
 *   void  vec_half_to_float(float *dst, const uint16_t *src, int64_t n);
 *   float vec_exp(float x);
 * so the same loops run on every path and only the inner products differ. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "flash.h"

static inline int64_t flash_max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t flash_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Keys [lo_p, hi_p) one query row sees within [k0, k1). */
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

/* Scores of one row against keys [a, b) of the tile whose first key is kt. */
static inline float flash_scores(const FlashJob *job, const float *qrow, const float *kt_base,
                                 int64_t kt, int64_t a, int64_t b, float *s)
{
    const int64_t dk = job->dk;
    int64_t p = a;
    for (; p + 4 <= b; p += 4)
        vec_dot4(qrow, kt_base + (p - kt) * dk, dk, dk, s + (p - kt));
    for (; p < b; p++)
        s[p - kt] = vec_dot(qrow, kt_base + (p - kt) * dk, dk);
    float mx = -INFINITY;
    const float c = job->softcap;
    for (p = a; p < b; p++) {
        float x = s[p - kt];
        if (c > 0.0f)
            x = tanhf(x / c) * c;
        s[p - kt] = x;
        mx = x > mx ? x : mx;
    }
    return mx;
}

void FLASH_UNIT(const FlashJob *job, const FlashUnit *u, float *scratch)
{
    const int64_t g = job->group, dk = job->dk, dv = job->dv;
    const int64_t rows = (u->q1 - u->q0) * g;
    const int64_t rows_max = job->q_block * g;
    /* scratch: scores rows_max x TILE | K tile | V tile | acc rows_max x dv | m | l */
    float *S = scratch;
    float *Kf = S + rows_max * FLASH_KEY_TILE;
    float *Vf = Kf + FLASH_KEY_TILE * dk;
    float *acc = Vf + FLASH_KEY_TILE * dv;
    float *m = acc + rows_max * dv;
    float *l = m + rows_max;

    for (int64_t r = 0; r < rows; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int64_t i = 0; i < rows * dv; i++)
        acc[i] = 0.0f;

    /* keys any row of this unit sees */
    int64_t kmin, kmax, unused;
    flash_row_keys(job, u, u->q0, &kmin, &unused);
    flash_row_keys(job, u, u->q1 - 1, &unused, &kmax);

    const size_t esize = job->kv_f16 ? 2 : 4;
    const char *kbase = (const char *)job->k + (size_t)(u->kv_head * job->cap) * dk * esize;
    const char *vbase = (const char *)job->v + (size_t)(u->kv_head * job->cap) * dv * esize;

    for (int64_t kt = kmin; kt < kmax; kt += FLASH_KEY_TILE) {
        const int64_t n = flash_min64(FLASH_KEY_TILE, kmax - kt);
        const float *Kt, *Vt;
        if (job->kv_f16) {
            vec_half_to_float(Kf, (const uint16_t *)kbase + kt * dk, n * dk);
            vec_half_to_float(Vf, (const uint16_t *)vbase + kt * dv, n * dv);
            Kt = Kf;
            Vt = Vf;
        } else {
            Kt = (const float *)kbase + kt * dk;
            Vt = (const float *)vbase + kt * dv;
        }
        for (int64_t qi = u->q0; qi < u->q1; qi++) {
            int64_t a, b;
            flash_row_keys(job, u, qi, &a, &b);
            a = flash_max64(a, kt);
            b = flash_min64(b, kt + n);
            if (a >= b)
                continue;
            for (int64_t j = 0; j < g; j++) {
                const int64_t r = (qi - u->q0) * g + j;
                const float *qrow = job->q + (qi * job->n_head + u->kv_head * g + j) * dk;
                float *s = S + r * FLASH_KEY_TILE;
                float *ar = acc + r * dv;
                float mx = flash_scores(job, qrow, Kt, kt, a, b, s);
                if (mx > m[r]) {
                    /* a new maximum: rescale what was summed so far */
                    float scale = m[r] == -INFINITY ? 0.0f : vec_exp(m[r] - mx);
                    l[r] *= scale;
                    vec_scale(ar, scale, dv);
                    m[r] = mx;
                }
                const float mr = m[r];
                float sum = 0.0f;
                for (int64_t p = a; p < b; p++) {
                    float e = vec_exp(s[p - kt] - mr);
                    s[p - kt] = e;
                    sum += e;
                }
                l[r] += sum;
                int64_t p = a;
                for (; p + 4 <= b; p += 4)
                    vec_axpy4(ar, s + (p - kt), Vt + (p - kt) * dv, dv, dv);
                for (; p < b; p++)
                    vec_axpy(ar, s[p - kt], Vt + (p - kt) * dv, dv);
            }
        }
    }

    for (int64_t qi = u->q0; qi < u->q1; qi++) {
        for (int64_t j = 0; j < g; j++) {
            const int64_t r = (qi - u->q0) * g + j;
            if (u->partial) {
                float *dst = u->partial + r * (2 + dv);
                dst[0] = m[r];
                dst[1] = l[r];
                for (int64_t d = 0; d < dv; d++)
                    dst[2 + d] = acc[r * dv + d];
            } else {
                float *dst = job->out + qi * job->n_head * dv + (u->kv_head * g + j) * dv;
                const float inv = 1.0f / l[r];
                for (int64_t d = 0; d < dv; d++)
                    dst[d] = acc[r * dv + d] * inv;
            }
        }
    }
}
