/* The scan's loops on 512-bit registers (AVX-512 F, BW, VL, DQ, as the
 * kernels' "avx512" path): sixteen logits a step, the tail masked. */
#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq")
#endif

#include <immintrin.h>
#include <math.h>

#include "exp_consts.h"
#include "logit_scan.h"

static int has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
}

static inline __mmask16 tail_mask(size_t left) { return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1); }

/* exp(x) for x <= 0 (exp_consts.h) */
static inline __m512 exp_nonpositive(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_LOW));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, fx);
}

static double exp_sum_avx512(const float *x, size_t n, float peak, float inv_t, int *has_nan)
{
    const __m512 vp = _mm512_set1_ps(peak), vt = _mm512_set1_ps(inv_t), none = _mm512_set1_ps(-INFINITY);
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    __mmask16 nan = 0;
    for (size_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_mask_loadu_ps(none, tail_mask(n - i), x + i); /* missing lanes: -inf, exp ~0 */
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        __m512 e = exp_nonpositive(_mm512_mul_ps(_mm512_sub_ps(v, vp), vt));
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    *has_nan = nan != 0;
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

static size_t next_above_avx512(const float *x, size_t from, size_t n, float above)
{
    const __m512 a = _mm512_set1_ps(above);
    for (size_t i = from; i < n; i += 16) {
        __mmask16 hit = _mm512_mask_cmp_ps_mask(tail_mask(n - i), _mm512_maskz_loadu_ps(tail_mask(n - i), x + i),
                                                a, _CMP_GT_OQ);
        if (hit)
            return i + (size_t)__builtin_ctz(hit);
    }
    return n;
}

const ScanIsa scan_avx512 = {"avx512", has_avx512, exp_sum_avx512, next_above_avx512};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int scan_avx512_unused;
#endif
