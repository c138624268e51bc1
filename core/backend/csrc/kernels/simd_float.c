/* F32 / F16 / BF16 weights on AVX2 and AVX-512: x stays float32. Each
 * weight vector is converted once and multiplied with up to 4 tokens (two
 * accumulators per token hide the FMA latency); rows of any length (the
 * last partial vector is masked on AVX-512, scalar on AVX2). */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

/* ---- AVX-512 ------------------------------------------------------------ */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif

/* 16 weights from element c (m: which of them exist) as float32. */
static inline __m512 w16_512(int wt, const uint8_t *row, int c, __mmask16 m) {
    if (wt == W_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c);
    if (wt == W_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define FLOAT512(NT)                                                                           \
    static void f512_##NT(int wt, const uint8_t *row, const act_t *a, int t0, float *out,      \
                          ptrdiff_t os, int r) {                                               \
        __m512 acc[NT][2];                                                                     \
        for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();             \
        const float *x = a->xf + (size_t)t0 * a->cols;                                         \
        int c = 0, n = a->cols;                                                                \
        for (; c + 32 <= n; c += 32) {                                                         \
            __m512 w0 = w16_512(wt, row, c, 0xFFFF), w1 = w16_512(wt, row, c + 16, 0xFFFF);    \
            for (int t = 0; t < NT; t++) {                                                     \
                acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)t * n + c), acc[t][0]); \
                acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + (size_t)t * n + c + 16), acc[t][1]); \
            }                                                                                  \
        }                                                                                      \
        for (; c < n; c += 16) {                                                               \
            __mmask16 m = n - c >= 16 ? 0xFFFF : (__mmask16)((1u << (n - c)) - 1);             \
            __m512 w = w16_512(wt, row, c, m);                                                 \
            for (int t = 0; t < NT; t++)                                                       \
                acc[t][0] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + (size_t)t * n + c), acc[t][0]); \
        }                                                                                      \
        for (int t = 0; t < NT; t++)                                                           \
            out[(t0 + t) * os + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1])); \
    }

FLOAT512(4)
FLOAT512(1)

static void mm_float512(int wt, const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,
                        float *out, ptrdiff_t os) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * rb;
        int t = 0;
        for (; t + 4 <= a->T; t += 4) f512_4(wt, row, a, t, out, os, r);
        for (; t < a->T; t++) f512_1(wt, row, a, t, out, os, r);
    }
}

#define MM_FLOAT(ISA, WT, NAME)                                                                \
    static void mm_##NAME##_##ISA(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a, \
                                  float *out, ptrdiff_t os) {                                  \
        mm_float##ISA(WT, w, rb, r0, r1, a, out, os);                                          \
    }

MM_FLOAT(512, W_F32, f32)
MM_FLOAT(512, W_F16, f16)
MM_FLOAT(512, W_BF16, bf16)

void simd_fill_float_avx512(isa_table *t) {
    t->mm[W_F32] = mm_f32_512;
    t->mm[W_F16] = mm_f16_512;
    t->mm[W_BF16] = mm_bf16_512;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* ---- AVX2 --------------------------------------------------------------- */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

static inline __m256 w8_256(int wt, const uint8_t *row, int c) {
    if (wt == W_F32) return _mm256_loadu_ps((const float *)row + c);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + c));
    if (wt == W_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float w1_scalar(int wt, const uint8_t *row, int c) {
    if (wt == W_F32) return ((const float *)row)[c];
    uint16_t h = rd16(row + 2 * (size_t)c);
    return wt == W_F16 ? _cvtsh_ss(h) : bf16_to_f32(h);
}

static inline float hsum256f(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define FLOAT256(NT)                                                                           \
    static void f256_##NT(int wt, const uint8_t *row, const act_t *a, int t0, float *out,      \
                          ptrdiff_t os, int r) {                                               \
        __m256 acc[NT][2];                                                                     \
        for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();             \
        const float *x = a->xf + (size_t)t0 * a->cols;                                         \
        int c = 0, n = a->cols;                                                                \
        for (; c + 16 <= n; c += 16) {                                                         \
            __m256 w0 = w8_256(wt, row, c), w1 = w8_256(wt, row, c + 8);                       \
            for (int t = 0; t < NT; t++) {                                                     \
                acc[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * n + c), acc[t][0]); \
                acc[t][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + (size_t)t * n + c + 8), acc[t][1]); \
            }                                                                                  \
        }                                                                                      \
        for (int t = 0; t < NT; t++) {                                                         \
            float s = hsum256f(_mm256_add_ps(acc[t][0], acc[t][1]));                           \
            for (int k = c; k < n; k++) s += w1_scalar(wt, row, k) * x[(size_t)t * n + k];     \
            out[(t0 + t) * os + r] = s;                                                        \
        }                                                                                      \
    }

FLOAT256(4)
FLOAT256(1)

static void mm_float256(int wt, const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,
                        float *out, ptrdiff_t os) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * rb;
        int t = 0;
        for (; t + 4 <= a->T; t += 4) f256_4(wt, row, a, t, out, os, r);
        for (; t < a->T; t++) f256_1(wt, row, a, t, out, os, r);
    }
}

MM_FLOAT(256, W_F32, f32)
MM_FLOAT(256, W_F16, f16)
MM_FLOAT(256, W_BF16, bf16)

void simd_fill_float_avx2(isa_table *t) {
    t->mm[W_F32] = mm_f32_256;
    t->mm[W_F16] = mm_f16_256;
    t->mm[W_BF16] = mm_bf16_256;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
typedef int simd_float_unused;
#endif
