/* The AVX2 + FMA + F16C kernel: flash_body.h's loops with 8-lane blocks,
 * under a target pragma so the rest of the extension stays baseline
 * x86-64 (chosen at import only where the CPU has these). */
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

/* exp(x) for x <= 0, within 2 ulp (Cephes' expf polynomial on x - n ln2). */
static inline __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f)); /* keeps 2^n a normal float; exp(-87) is as good as 0 */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* 8 keys/values from F32 or F16 storage; `f16` is a constant at every call. */
ALWAYS_INLINE __m256 load8(const void *p, int64_t i, int f16)
{
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

ALWAYS_INLINE float load1(const void *p, int64_t i, int f16)
{
    return f16 ? flash_half_to_float(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* 8 vectors -> one of 8 sums (lane i: a[i]'s): pairwise interleave-and-add,
 * then halves. Each vector's lanes are summed by the same tree whatever the
 * others hold. */
ALWAYS_INLINE __m256 sum8(const __m256 a[8])
{
    __m256 x[4], y[2];
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++)
        x[t] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * t], a[2 * t + 1]), _mm256_unpackhi_ps(a[2 * t], a[2 * t + 1]));
#pragma GCC unroll 2
    for (int t = 0; t < 2; t++) {
        __m256d lo = _mm256_unpacklo_pd(_mm256_castps_pd(x[2 * t]), _mm256_castps_pd(x[2 * t + 1]));
        __m256d hi = _mm256_unpackhi_pd(_mm256_castps_pd(x[2 * t]), _mm256_castps_pd(x[2 * t + 1]));
        y[t] = _mm256_add_ps(_mm256_castpd_ps(lo), _mm256_castpd_ps(hi));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(y[0], y[1], 0x20), _mm256_permute2f128_ps(y[0], y[1], 0x31));
}

/* nq rows (1..3, a constant at every call) x four keys in one pass, so
 * three rows make 12 independent chains (one row alone is latency-bound):
 * lane 4r + j of s[r / 2] is q[r] . k[j]. */
ALWAYS_INLINE void dot_rows(const float *const q[], int nq, const void *const k[4], int64_t d, int f16, __m256 s[2])
{
    __m256 a[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        a[i] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= d; i += 8) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256 kv = load8(k[j], i, f16);
#pragma GCC unroll 3
            for (int r = 0; r < nq; r++)
                a[4 * r + j] = _mm256_fmadd_ps(_mm256_loadu_ps(q[r] + i), kv, a[4 * r + j]);
        }
    }
    s[0] = sum8(a);
    if (nq > 2)
        s[1] = sum8(a + 8);
    if (i < d) {
        float tail[16] = {0};
        for (; i < d; i++)
            for (int j = 0; j < 4; j++) {
                const float kx = load1(k[j], i, f16);
                for (int r = 0; r < nq; r++)
                    tail[4 * r + j] += q[r][i] * kx;
            }
        s[0] = _mm256_add_ps(s[0], _mm256_loadu_ps(tail));
        if (nq > 2)
            s[1] = _mm256_add_ps(s[1], _mm256_loadu_ps(tail + 8));
    }
}

ALWAYS_INLINE void dot_nx4(const float *const q[4], const void *const k[4], int64_t d, float *s, int64_t ss, int f16,
                           int nr)
{
    __m256 s01[2], s23[2];
    if (nr == 4) { /* two passes: 16 accumulators would not fit the 16 registers */
        dot_rows(q, 2, k, d, f16, s01);
        dot_rows(q + 2, 2, k, d, f16, s23);
    } else {
        dot_rows(q, nr, k, d, f16, s01);
        s23[0] = s01[1];
    }
    _mm_storeu_ps(s, _mm256_castps256_ps128(s01[0]));
    if (nr > 1)
        _mm_storeu_ps(s + ss, _mm256_extractf128_ps(s01[0], 1));
    if (nr > 2)
        _mm_storeu_ps(s + 2 * ss, _mm256_castps256_ps128(s23[0]));
    if (nr > 3)
        _mm_storeu_ps(s + 3 * ss, _mm256_extractf128_ps(s23[0], 1));
}

ALWAYS_INLINE void pv_n(float *acc, int64_t dv, const float *e, int64_t es, const void *v, int64_t n, int f16, int nr)
{
    int64_t d0 = 0;
    for (; d0 + 16 <= dv; d0 += 16) {
        /* nr rows x 16 columns of acc stay in registers over all n keys */
        __m256 a[4][2];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 2
            for (int c = 0; c < 2; c++)
                a[r][c] = _mm256_loadu_ps(acc + r * dv + d0 + 8 * c);
        for (int64_t p = 0; p < n; p++) {
            const __m256 x0 = load8(v, p * dv + d0, f16), x1 = load8(v, p * dv + d0 + 8, f16);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256 w = _mm256_broadcast_ss(e + r * es + p);
                a[r][0] = _mm256_fmadd_ps(w, x0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(w, x1, a[r][1]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 2
            for (int c = 0; c < 2; c++)
                _mm256_storeu_ps(acc + r * dv + d0 + 8 * c, a[r][c]);
    }
    for (; d0 < dv; d0++)
        for (int r = 0; r < nr; r++) {
            float t = acc[r * dv + d0];
            for (int64_t p = 0; p < n; p++)
                t += e[r * es + p] * load1(v, p * dv + d0, f16);
            acc[r * dv + d0] = t;
        }
}

#include "flash_rows.h"

static inline float vec_max(const float *x, int64_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

static inline float vec_exp_sum(float *x, int64_t n, float m)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        float tail[8] = {0};
        for (int64_t t = i; t < n; t++)
            tail[t - i] = x[t] - m;
        const __m256 e = exp8(_mm256_loadu_ps(tail));
        _mm256_storeu_ps(tail, e);
        for (int64_t t = i; t < n; t++)
            x[t] = tail[t - i];
        /* lanes past n held exp(0): leave them out of the sum */
        for (int64_t t = n - i; t < 8; t++)
            tail[t] = 0.0f;
        sum = _mm256_add_ps(sum, _mm256_loadu_ps(tail));
    }
    return hsum8(sum);
}

static inline void vec_scale(float *y, float a, int64_t n)
{
    const __m256 va = _mm256_set1_ps(a);
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

#define FLASH_FUSED_F16 1
#define FLASH_UNIT flash_unit_avx2
#include "flash_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
