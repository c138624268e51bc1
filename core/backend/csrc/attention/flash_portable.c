/* The portable kernel: C with the compiler's vector extensions, so it
 * runs as the baseline ISA's vectors (SSE2 on x86-64, NEON on arm64). The reference every other
 * path is tested against, besides the NumPy one. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "flash.h"

/* GCC/clang vector extensions: 4-lane vectors that become SSE2 on x86-64
 * and NEON on arm64 (plain scalars elsewhere), with no intrinsics. */
typedef float f32x4 __attribute__((vector_size(16)));

static inline f32x4 load4(const float *p)
{
    f32x4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, f32x4 v) { memcpy(p, &v, sizeof v); }

static inline float hsum4(f32x4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* Two rows x four keys: s0[j] = q0 . k[j], s1[j] = q1 . k[j]; with `two` 0
 * (a constant at every call) only row 0. */
static inline __attribute__((always_inline)) void dot_2x4(const float *q0, const float *q1, const float *const k[4],
                                                          int64_t d, float *s0, float *s1, int two)
{
    f32x4 t0[4] = {{0}}, t1[4] = {{0}};
    int64_t i = 0;
    for (; i + 4 <= d; i += 4) {
        const f32x4 x0 = load4(q0 + i);
        for (int j = 0; j < 4; j++) {
            const f32x4 kv = load4(k[j] + i);
            t0[j] += x0 * kv;
            if (two)
                t1[j] += load4(q1 + i) * kv;
        }
    }
    for (int j = 0; j < 4; j++) {
        float a = hsum4(t0[j]);
        for (int64_t x = i; x < d; x++)
            a += q0[x] * k[j][x];
        s0[j] = a;
        if (two) {
            float b = hsum4(t1[j]);
            for (int64_t x = i; x < d; x++)
                b += q1[x] * k[j][x];
            s1[j] = b;
        }
    }
}

static inline void vec_dot_4x4(const float *const q[4], const float *const k[4], int64_t d, float *s, int64_t ss,
                               int nr)
{
    if (nr > 1)
        dot_2x4(q[0], q[1], k, d, s, s + ss, 1);
    else
        dot_2x4(q[0], q[0], k, d, s, s, 0);
    if (nr > 3)
        dot_2x4(q[2], q[3], k, d, s + 2 * ss, s + 3 * ss, 1);
    else if (nr > 2)
        dot_2x4(q[2], q[2], k, d, s + 2 * ss, s + 2 * ss, 0);
}

static inline void vec_pv_4(float *acc, int64_t dv, const float *e, int64_t es, const float *v, int64_t n, int nr)
{
    int64_t d0 = 0;
    for (; d0 + 8 <= dv; d0 += 8) {
        /* nr rows x 8 columns of acc stay in registers over all n keys */
        f32x4 a[4][2];
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < 2; c++)
                a[r][c] = load4(acc + r * dv + d0 + 4 * c);
        for (int64_t p = 0; p < n; p++) {
            const f32x4 x0 = load4(v + p * dv + d0), x1 = load4(v + p * dv + d0 + 4);
            for (int r = 0; r < nr; r++) {
                const float w = e[r * es + p];
                a[r][0] += w * x0;
                a[r][1] += w * x1;
            }
        }
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < 2; c++)
                store4(acc + r * dv + d0 + 4 * c, a[r][c]);
    }
    for (; d0 < dv; d0++)
        for (int r = 0; r < nr; r++) {
            float t = acc[r * dv + d0];
            for (int64_t p = 0; p < n; p++)
                t += e[r * es + p] * v[p * dv + d0];
            acc[r * dv + d0] = t;
        }
}

static inline float vec_max(const float *x, int64_t n)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static inline float vec_exp_sum(float *x, int64_t n, float m)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

static inline void vec_scale(float *y, float a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] *= a;
}

/* float16 -> float32 without branches, so the loop vectorizes: move the
 * bits into place and let one multiply rebias the exponent (it also
 * normalizes subnormals); the largest exponent means inf/nan. */
static inline void vec_half_to_float(float *dst, const uint16_t *src, int64_t n)
{
    const union { uint32_t u; float f; } rebias = {(uint32_t)(127 + 127 - 15) << 23};
    for (int64_t i = 0; i < n; i++) {
        const uint32_t h = src[i];
        union { uint32_t u; float f; } cv = {(h & 0x7fffu) << 13};
        cv.f *= rebias.f;
        if ((h & 0x7c00u) == 0x7c00u)
            cv.u |= 0x7f800000u;
        cv.u |= (h & 0x8000u) << 16;
        dst[i] = cv.f;
    }
}

#define FLASH_UNIT flash_unit_portable
#include "flash_body.h"
