/* Activation quantization (act.c) written out in AVX-512: the same IEEE
 * float32 operations in the same order, 16 elements at a time, so the quants
 * are the scalar code's bit for bit (nearest_int's add-a-constant rounding
 * included, so NaN and inf give the same garbage too). gcc's vectorization
 * of the scalar loops ran at ~1 ns per element, ~4% of a 512-token prefill;
 * and for the tile kernels' layout (act_t.qt) it transposes the quants of 4
 * tokens in registers instead of copying 4 bytes at a time. */
#include "act_x86.h"

#if defined(ACT_X86)

#include <immintrin.h>

#define T512 __attribute__((target("avx2,avx512f,avx512bw,avx512dq")))

int act_avx512_usable(void) {
    static int usable = -1;
    if (usable < 0) usable = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512dq");
    return usable;
}

/* max |x| over n elements; a NaN never wins (as the scalar a > amax). */
T512 static float amax_n(const float *x, int n) {
    const __m512 nosign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + i), nosign), m);
    return _mm512_reduce_max_ps(m);
}

/* act.c's clamp127(nearest_int(v)). */
T512 static inline __m512i round_clamp(__m512 v) {
    __m512i i = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.f)));
    i = _mm512_sub_epi32(_mm512_and_si512(i, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
    return _mm512_max_epi32(_mm512_min_epi32(i, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
}

/* One block of n elements (a multiple of 16): both levels, and per 16
 * elements the sums of q and of q2 (s1, s2). Returns d2. */
T512 static float quantize_block16(const float *x, int8_t *q, int8_t *q2, int n, int32_t *s1, int32_t *s2) {
    float d = amax_n(x, n) / 127.f;
    float id = d != 0.f ? 1.f / d : 0.f, id2 = id * 256.f;
    const __m512 vd = _mm512_set1_ps(d), vid = _mm512_set1_ps(id), vid2 = _mm512_set1_ps(id2);
    for (int i = 0; i < n; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        __m512i v = round_clamp(_mm512_mul_ps(xv, vid));
        __m512 r = _mm512_sub_ps(xv, _mm512_mul_ps(vd, _mm512_cvtepi32_ps(v)));
        __m512i v2 = round_clamp(_mm512_mul_ps(r, vid2));
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(v));
        _mm_storeu_si128((__m128i *)(q2 + i), _mm512_cvtepi32_epi8(v2));
        s1[i / 16] = _mm512_reduce_add_epi32(v);
        s2[i / 16] = _mm512_reduce_add_epi32(v2);
    }
    return d * (1.f / 256.f);
}

T512 static void quantize_token(act_t *a, int t) {
    const float *x = a->xf + (size_t)t * a->cols;
    int8_t *q = a->q + (size_t)t * a->cols, *q2 = a->q2 + (size_t)t * a->cols;
    int32_t s1[QK_K / 16], s2[QK_K / 16];
    if (a->kind == ACT_Q8_32) {
        int nb = a->cols / 32;
        for (int b = 0; b < nb; b++) {
            size_t i = (size_t)t * nb + b;
            a->d[i] = quantize_block16(x + 32 * b, q + 32 * b, q2 + 32 * b, 32, s1, s2);
            int s = 256 * (s1[0] + s1[1]) + s2[0] + s2[1];
            a->bsum[i] = s;
            a->ds[i] = a->d[i] * (float)s;
        }
        return;
    }
    int nb = a->cols / QK_K;
    for (int b = 0; b < nb; b++) {
        a->d[(size_t)t * nb + b] = quantize_block16(x + QK_K * b, q + QK_K * b, q2 + QK_K * b, QK_K, s1, s2);
        size_t o16 = (size_t)t * (a->cols / 16) + 16 * b, o32 = (size_t)t * (a->cols / 32) + 8 * b;
        for (int k = 0; k < 16; k++) {
            a->sum[o16 + k] = (int16_t)s1[k];
            a->sum2[o16 + k] = (int16_t)s2[k];
        }
        for (int k = 0; k < 8; k++) {
            a->sum32[o32 + k] = (int16_t)(s1[2 * k] + s1[2 * k + 1]);
            a->sum32_2[o32 + k] = (int16_t)(s2[2 * k] + s2[2 * k + 1]);
        }
    }
}

/* g[k] lane L = dword (4L + k) of each of the 4 rows r[0..3], in row order. */
T512 static inline void transpose4(const __m512i r[4], __m512i g[4]) {
    __m512i a = _mm512_unpacklo_epi32(r[0], r[1]), b = _mm512_unpackhi_epi32(r[0], r[1]);
    __m512i c = _mm512_unpacklo_epi32(r[2], r[3]), e = _mm512_unpackhi_epi32(r[2], r[3]);
    g[0] = _mm512_unpacklo_epi64(a, c);
    g[1] = _mm512_unpackhi_epi64(a, c);
    g[2] = _mm512_unpacklo_epi64(b, e);
    g[3] = _mm512_unpackhi_epi64(b, e);
}

#define PUT_LANE(L)                                                                            \
    for (int k = 0; k < 4; k++) {                                                              \
        _mm_storeu_si128((__m128i *)(dst + 32 * (4 * (L) + k)), _mm512_extracti32x4_epi32(g[k], L)); \
        _mm_storeu_si128((__m128i *)(dst + 32 * (4 * (L) + k) + 16), _mm512_extracti32x4_epi32(h[k], L)); \
    }

/* act_t.qt's block of the 4 tokens t0 .. t0 + 3 (all quantized). */
T512 static void tile_block(act_t *a, int t0) {
    const size_t cols = (size_t)a->cols;
    const int8_t *q = a->q + (size_t)t0 * cols, *q2 = a->q2 + (size_t)t0 * cols;
    int8_t *dst = a->qt + (size_t)t0 * 2 * cols;
    for (size_t c = 0; c < cols; c += 64, dst += 16 * 32) {
        __m512i r[4], s[4], g[4], h[4];
        for (int t = 0; t < 4; t++) {
            r[t] = _mm512_loadu_si512(q + t * cols + c);
            s[t] = _mm512_loadu_si512(q2 + t * cols + c);
        }
        transpose4(r, g);
        transpose4(s, h);
        PUT_LANE(0) PUT_LANE(1) PUT_LANE(2) PUT_LANE(3)
    }
}

T512 void act_quantize_rows_avx512(act_t *a, int t0, int t1) {
    for (int t = t0; t < t1; t++) quantize_token(a, t);
    if (!a->qt) return;
    int t = t0;
    if (a->cols % 64 == 0)
        for (; t % ACT_TILE_T == 0 && t + ACT_TILE_T <= t1; t += ACT_TILE_T) tile_block(a, t);
    for (; t < t1; t++) act_tile_copy(a, t);
}

#endif
