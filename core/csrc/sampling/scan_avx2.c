/* The scan's loops on 256-bit registers (AVX2 and FMA): eight logits a
 * step, the tail in plain C. */
#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#include <immintrin.h>
#include <math.h>

#include "exp_consts.h"
#include "logit_scan.h"

static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* exp(x) for x <= 0 (exp_consts.h) */
static inline __m256 exp_nonpositive(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_LOW)); /* 2^n stays a normal number */
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2));
}

static double exp_sum_avx2(const float *x, size_t n, float peak, float inv_t, int *has_nan)
{
    const __m256 vp = _mm256_set1_ps(peak), vt = _mm256_set1_ps(inv_t);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    __m256 nan = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        __m256 e = exp_nonpositive(_mm256_mul_ps(_mm256_sub_ps(v, vp), vt));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    int any_nan = _mm256_movemask_ps(nan) != 0;
    if (i < n) { /* the tail as one more step, its missing lanes at -inf (exp ~0) */
        float tail[8];
        for (int j = 0; j < 8; j++) {
            any_nan |= i + j < n && x[i + j] != x[i + j];
            tail[j] = i + j < n ? (x[i + j] - peak) * inv_t : -INFINITY;
        }
        __m256 e = exp_nonpositive(_mm256_loadu_ps(tail));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    *has_nan = any_nan;
    double sums[4];
    _mm256_storeu_pd(sums, _mm256_add_pd(lo, hi));
    return (sums[0] + sums[1]) + (sums[2] + sums[3]);
}

static size_t next_above_avx2(const float *x, size_t from, size_t n, float above)
{
    const __m256 a = _mm256_set1_ps(above);
    size_t i = from;
    for (; i + 8 <= n; i += 8) {
        int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), a, _CMP_GT_OQ));
        if (hit)
            return i + (size_t)__builtin_ctz((unsigned)hit);
    }
    for (; i < n; i++)
        if (x[i] > above)
            return i;
    return n;
}

const ScanIsa scan_avx2 = {"avx2", has_avx2, exp_sum_avx2, next_above_avx2};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int scan_avx2_unused;
#endif
