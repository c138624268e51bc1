/* The AVX2 + FMA + F16C kernel: flash_body.h's loops with 8-lane inner
 * products, compiled under a target pragma so the rest of the extension
 * stays baseline x86-64 (chosen at import only where the CPU has them). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "flash.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float vec_dot(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline void vec_dot4(const float *q, const float *k, int64_t stride, int64_t n, float *s4)
{
    /* one load of q feeds four keys */
    const float *k0 = k, *k1 = k + stride, *k2 = k + 2 * stride, *k3 = k + 3 * stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(q + i);
        a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k0 + i), a0);
        a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k1 + i), a1);
        a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k2 + i), a2);
        a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k3 + i), a3);
    }
    float t0 = hsum8(a0), t1 = hsum8(a1), t2 = hsum8(a2), t3 = hsum8(a3);
    for (; i < n; i++) {
        t0 += q[i] * k0[i];
        t1 += q[i] * k1[i];
        t2 += q[i] * k2[i];
        t3 += q[i] * k3[i];
    }
    s4[0] = t0; s4[1] = t1; s4[2] = t2; s4[3] = t3;
}

static inline void vec_axpy(float *y, float a, const float *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static inline void vec_axpy4(float *y, const float *e4, const float *x, int64_t stride, int64_t n)
{
    const float *x0 = x, *x1 = x + stride, *x2 = x + 2 * stride, *x3 = x + 3 * stride;
    __m256 e0 = _mm256_set1_ps(e4[0]), e1 = _mm256_set1_ps(e4[1]);
    __m256 e2 = _mm256_set1_ps(e4[2]), e3 = _mm256_set1_ps(e4[3]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        acc = _mm256_fmadd_ps(e0, _mm256_loadu_ps(x0 + i), acc);
        acc = _mm256_fmadd_ps(e1, _mm256_loadu_ps(x1 + i), acc);
        acc = _mm256_fmadd_ps(e2, _mm256_loadu_ps(x2 + i), acc);
        acc = _mm256_fmadd_ps(e3, _mm256_loadu_ps(x3 + i), acc);
        _mm256_storeu_ps(y + i, acc);
    }
    for (; i < n; i++)
        y[i] += e4[0] * x0[i] + e4[1] * x1[i] + e4[2] * x2[i] + e4[3] * x3[i];
}

static inline void vec_scale(float *y, float a, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}

static inline void vec_half_to_float(float *dst, const uint16_t *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = flash_half_to_float(src[i]);
}

static inline float vec_exp(float x) { return expf(x); }

#define FLASH_UNIT flash_unit_avx2
#include "flash_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
