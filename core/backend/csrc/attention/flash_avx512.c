/* The AVX-512 kernel (F/BW/VL/DQ): flash_body.h's loops with 16-lane
 * blocks and masked tails, under a target pragma so the rest of the
 * extension stays baseline x86-64 (chosen at import only where the CPU
 * has these). */
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

/* exp(x) for x <= 0, within 2 ulp (Cephes' expf polynomial on x - n ln2). */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f)); /* exp(-88) ~ 6e-39: as good as 0 here */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* a[i] summed, for 16 vectors at once: lane i of the result (row-major 4x4).
 * Each vector's lanes are summed by the same tree whatever the others hold,
 * so a row's scores do not depend on the rows beside it. */
ALWAYS_INLINE __m512 sum16(const __m512 a[16])
{
    __m512 x[8], y[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        x[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(x[2 * i]), _mm512_castps_pd(x[2 * i + 1]));
        __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(x[2 * i]), _mm512_castps_pd(x[2 * i + 1]));
        y[i] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
    }
    /* 128-bit lane L of y[i] holds lane L's partial sums of a[4i..4i+3] */
    __m512 z0 = _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88), _mm512_shuffle_f32x4(y[0], y[1], 0xdd));
    __m512 z1 = _mm512_add_ps(_mm512_shuffle_f32x4(y[2], y[3], 0x88), _mm512_shuffle_f32x4(y[2], y[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(z0, z1, 0x88), _mm512_shuffle_f32x4(z0, z1, 0xdd));
}

/* 16 keys/values from F32 or F16 storage; `f16` is a constant at every call. */
ALWAYS_INLINE __m512 load16(const void *p, int64_t i, int f16)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

ALWAYS_INLINE __m512 maskload16(__mmask16 mk, const void *p, int64_t i, int f16)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, (const uint16_t *)p + i));
    return _mm512_maskz_loadu_ps(mk, (const float *)p + i);
}

/* Rows 0..nr-1 (nr a constant at every call) x 4 keys; the accumulators stay
 * in registers (unrolled loops over constant bounds), absent rows' stay 0. */
ALWAYS_INLINE void dot_nx4(const float *const q[4], const void *const k[4], int64_t d, float *s, int64_t ss,
                           int f16, int nr)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m512 kv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            kv[j] = load16(k[j], i, f16);
        /* one load per key and 16 lanes, used by every row: else GCC folds
         * the load into each row's FMA, and loads outnumber what the ports take */
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            __asm__("" : "+v"(kv[j]));
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            __m512 qv = _mm512_loadu_ps(q[r] + i);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[r * 4 + j] = _mm512_fmadd_ps(qv, kv[j], acc[r * 4 + j]);
        }
    }
    if (i < d) {
        const __mmask16 mk = tail_mask(d - i);
        __m512 kv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            kv[j] = maskload16(mk, k[j], i, f16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            __m512 qv = _mm512_maskz_loadu_ps(mk, q[r] + i);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[r * 4 + j] = _mm512_fmadd_ps(qv, kv[j], acc[r * 4 + j]);
        }
    }
    const __m512 sums = sum16(acc);
    _mm_storeu_ps(s, _mm512_castps512_ps128(sums));
    if (nr > 1)
        _mm_storeu_ps(s + ss, _mm512_extractf32x4_ps(sums, 1));
    if (nr > 2)
        _mm_storeu_ps(s + 2 * ss, _mm512_extractf32x4_ps(sums, 2));
    if (nr > 3)
        _mm_storeu_ps(s + 3 * ss, _mm512_extractf32x4_ps(sums, 3));
}

ALWAYS_INLINE void pv_n(float *acc, int64_t dv, const float *e, int64_t es, const void *v, int64_t n, int f16,
                        int nr)
{
    int64_t d0 = 0;
    for (; d0 + 64 <= dv; d0 += 64) {
        /* nr rows x 64 columns of acc stay in registers over all n keys */
        __m512 a[4][4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                a[r][c] = _mm512_loadu_ps(acc + r * dv + d0 + 16 * c);
        for (int64_t p = 0; p < n; p++) {
            __m512 x[4];
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                x[c] = load16(v, p * dv + d0 + 16 * c, f16);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m512 w = _mm512_set1_ps(e[r * es + p]);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    a[r][c] = _mm512_fmadd_ps(w, x[c], a[r][c]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                _mm512_storeu_ps(acc + r * dv + d0 + 16 * c, a[r][c]);
    }
    for (; d0 < dv; d0 += 16) {
        const __mmask16 mk = d0 + 16 <= dv ? (__mmask16)0xffff : tail_mask(dv - d0);
        __m512 a[4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            a[r] = _mm512_maskz_loadu_ps(mk, acc + r * dv + d0);
        for (int64_t p = 0; p < n; p++) {
            const __m512 x = maskload16(mk, v, p * dv + d0, f16);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                a[r] = _mm512_fmadd_ps(_mm512_set1_ps(e[r * es + p]), x, a[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            _mm512_mask_storeu_ps(acc + r * dv + d0, mk, a[r]);
    }
}

#include "flash_rows.h"

static inline float vec_max(const float *x, int64_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n)
        m = _mm512_mask_max_ps(m, tail_mask(n - i), m, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return _mm512_reduce_max_ps(m);
}

static inline float vec_exp_sum(float *x, int64_t n, float m)
{
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        const __mmask16 mk = tail_mask(n - i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), vm));
        _mm512_mask_storeu_ps(x + i, mk, e);
        sum = _mm512_mask_add_ps(sum, mk, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static inline void vec_scale(float *y, float a, int64_t n)
{
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 mk = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, mk, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(mk, y + i)));
    }
}

static inline void vec_half_to_float(float *dst, const uint16_t *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    if (i < n) {
        const __mmask16 mk = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, mk, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, src + i)));
    }
}

#define FLASH_FUSED_F16 1
#define FLASH_UNIT flash_unit_avx512
#include "flash_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
