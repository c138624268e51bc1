/* The AVX-512 kernel (F/BW/VL/DQ): flash_body.h's loops with 16-lane
 * inner products and masked tails, under a target pragma. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "flash.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")
#endif

static inline __mmask16 tail_mask(int64_t left) { return (__mmask16)((1u << left) - 1u); }

static inline float vec_dot(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 mk = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, a + i), _mm512_maskz_loadu_ps(mk, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline void vec_dot4(const float *q, const float *k, int64_t stride, int64_t n, float *s4)
{
    /* one load of q feeds four keys */
    const float *k0 = k, *k1 = k + stride, *k2 = k + 2 * stride, *k3 = k + 3 * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(q + i);
        a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(k0 + i), a0);
        a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(k1 + i), a1);
        a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(k2 + i), a2);
        a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(k3 + i), a3);
    }
    if (i < n) {
        __mmask16 mk = tail_mask(n - i);
        __m512 x = _mm512_maskz_loadu_ps(mk, q + i);
        a0 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, k0 + i), a0);
        a1 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, k1 + i), a1);
        a2 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, k2 + i), a2);
        a3 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mk, k3 + i), a3);
    }
    s4[0] = _mm512_reduce_add_ps(a0);
    s4[1] = _mm512_reduce_add_ps(a1);
    s4[2] = _mm512_reduce_add_ps(a2);
    s4[3] = _mm512_reduce_add_ps(a3);
}

static inline void vec_axpy(float *y, float a, const float *x, int64_t n)
{
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 mk = tail_mask(n - i);
        __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, x + i), _mm512_maskz_loadu_ps(mk, y + i));
        _mm512_mask_storeu_ps(y + i, mk, r);
    }
}

static inline void vec_axpy4(float *y, const float *e4, const float *x, int64_t stride, int64_t n)
{
    const float *x0 = x, *x1 = x + stride, *x2 = x + 2 * stride, *x3 = x + 3 * stride;
    __m512 e0 = _mm512_set1_ps(e4[0]), e1 = _mm512_set1_ps(e4[1]);
    __m512 e2 = _mm512_set1_ps(e4[2]), e3 = _mm512_set1_ps(e4[3]);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 acc = _mm512_loadu_ps(y + i);
        acc = _mm512_fmadd_ps(e0, _mm512_loadu_ps(x0 + i), acc);
        acc = _mm512_fmadd_ps(e1, _mm512_loadu_ps(x1 + i), acc);
        acc = _mm512_fmadd_ps(e2, _mm512_loadu_ps(x2 + i), acc);
        acc = _mm512_fmadd_ps(e3, _mm512_loadu_ps(x3 + i), acc);
        _mm512_storeu_ps(y + i, acc);
    }
    if (i < n) {
        __mmask16 mk = tail_mask(n - i);
        __m512 acc = _mm512_maskz_loadu_ps(mk, y + i);
        acc = _mm512_fmadd_ps(e0, _mm512_maskz_loadu_ps(mk, x0 + i), acc);
        acc = _mm512_fmadd_ps(e1, _mm512_maskz_loadu_ps(mk, x1 + i), acc);
        acc = _mm512_fmadd_ps(e2, _mm512_maskz_loadu_ps(mk, x2 + i), acc);
        acc = _mm512_fmadd_ps(e3, _mm512_maskz_loadu_ps(mk, x3 + i), acc);
        _mm512_mask_storeu_ps(y + i, mk, acc);
    }
}

static inline void vec_scale(float *y, float a, int64_t n)
{
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 mk = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, mk, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(mk, y + i)));
    }
}

static inline void vec_half_to_float(float *dst, const uint16_t *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    if (i < n) {
        __mmask16 mk = tail_mask(n - i);
        __m256i h = _mm256_maskz_loadu_epi16(mk, src + i);
        _mm512_mask_storeu_ps(dst + i, mk, _mm512_cvtph_ps(h));
    }
}

static inline float vec_exp(float x) { return expf(x); }

#define FLASH_UNIT flash_unit_avx512
#include "flash_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
