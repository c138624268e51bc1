/* The portable kernel: plain C that the compiler may vectorize for the
 * baseline ISA (SSE2 on x86-64, NEON on arm64). The reference every other
 * path is tested against, besides the NumPy one. */
#include <math.h>
#include <stdint.h>

#include "flash.h"

static inline float vec_dot(const float *a, const float *b, int64_t n)
{
    /* four partial sums: independent chains the compiler can keep in lanes */
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static inline void vec_dot4(const float *q, const float *k, int64_t stride, int64_t n, float *s4)
{
    for (int j = 0; j < 4; j++)
        s4[j] = vec_dot(q, k + j * stride, n);
}

static inline void vec_axpy(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static inline void vec_axpy4(float *y, const float *e4, const float *x, int64_t stride, int64_t n)
{
    const float e0 = e4[0], e1 = e4[1], e2 = e4[2], e3 = e4[3];
    const float *x0 = x, *x1 = x + stride, *x2 = x + 2 * stride, *x3 = x + 3 * stride;
    for (int64_t i = 0; i < n; i++)
        y[i] += e0 * x0[i] + e1 * x1[i] + e2 * x2[i] + e3 * x3[i];
}

static inline void vec_scale(float *y, float a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] *= a;
}

static inline void vec_half_to_float(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = flash_half_to_float(src[i]);
}

static inline float vec_exp(float x) { return expf(x); }

#define FLASH_UNIT flash_unit_portable
#include "flash_body.h"
