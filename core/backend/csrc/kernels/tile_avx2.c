/* AVX2 microkernels of the tile path (tile.h), for CPUs without VNNI: each
 * 8-row half of a tile in one register; maddubs multiplies 4 unsigned
 * weights per row with 4 broadcast activations into int16 pair sums, which
 * add up in int16 for as many groups as cannot overflow (umax bounds
 * them), then madd applies the sub-block scale (or ones) into int32. */
#include "tile.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include <immintrin.h>

#include "simd_x86.h"

static inline __m256i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Groups whose int16 pair sums cannot overflow: 2 * umax * 127 per group. */
static inline int flush_groups(const tile_fmt *f) { return 32767 / (2 * 127 * f->umax); }

/* Token loops spelled out with one named register per token (EACH_T),
 * as in tile_avx512.c: arrays made gcc spill. Two tokens per pass: with
 * both levels' registers, more spill (measured). */
#define EACH_T1(X) X(0)
#define EACH_T2(X) X(0) X(1)

/* k-quants: one pass over the weights for both levels, each into its own
 * registers (p / is, pb / js): half as long dependency chains as level
 * after level, and each weight load serves both. */
#define TILE_K(NT, NSUB)                                                                       \
    static void tk_##NSUB##_##NT(const tile_fmt *f, const uint8_t *pk0, int nb, const act_t *a, \
                                 int t0, float *res) {                                         \
        const int gsub = 64 / NSUB, npair = NSUB / 2;                                          \
        const int fl = flush_groups(f) < gsub ? flush_groups(f) : gsub;                        \
        const size_t xs = (size_t)a->cols, bss = NSUB == 8 ? a->cols / 32 : a->cols / 16;      \
        for (int h = 0; h < 2; h++) {                                                          \
            const uint8_t *pk = pk0 + 32 * h;                                                  \
            const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;           \
            const float *xd = a->d + (size_t)t0 * nb;                                          \
            const int16_t *bs = (NSUB == 8 ? a->sum32 : a->sum) + (size_t)t0 * bss;            \
            const int16_t *bs2 = (NSUB == 8 ? a->sum32_2 : a->sum2) + (size_t)t0 * bss;        \
            const int hm = f->has_min;                                                         \
            EACH_T##NT(DECL_ACC)                                                               \
            for (int i = 0; i < nb; i++, pk += f->blk_bytes, x += QK_K, x2 += QK_K, bs += NSUB, bs2 += NSUB) { \
                __m256 d = _mm256_loadu_ps((const float *)(pk + f->off_d)),                    \
                       dm = _mm256_loadu_ps((const float *)(pk + f->off_m));                   \
                EACH_T##NT(DECL_IS)                                                            \
                for (int s = 0; s < NSUB; s++) {                                               \
                    __m256i sc = _mm256_loadu_si256((const __m256i *)(pk + f->off_sc16 + 64 * s)); \
                    for (int g0 = s * gsub; g0 < (s + 1) * gsub; g0 += fl) {                   \
                        EACH_T##NT(DECL_P16)                                                   \
                        for (int g = g0; g < g0 + fl; g++) {                                   \
                            __m256i q = _mm256_loadu_si256((const __m256i *)(pk + 64 * g));    \
                            EACH_T##NT(DOT_G)                                                  \
                        }                                                                      \
                        EACH_T##NT(SCALE_P16)                                                  \
                    }                                                                          \
                }                                                                              \
                EACH_T##NT(FINISH_K)                                                           \
            }                                                                                  \
            EACH_T##NT(STORE_ACC)                                                              \
        }                                                                                      \
    }

#define DECL_ACC(t) __m256 acc##t = _mm256_setzero_ps();
#define DECL_IS(t) __m256i is##t = _mm256_setzero_si256(), js##t = _mm256_setzero_si256();
#define DECL_P16(t) __m256i p##t = _mm256_setzero_si256(), pb##t = _mm256_setzero_si256();
#define DOT_G(t)                                                                               \
    p##t = _mm256_add_epi16(p##t, _mm256_maddubs_epi16(q, bcast32(x + (t) * xs + 4 * g)));     \
    pb##t = _mm256_add_epi16(pb##t, _mm256_maddubs_epi16(q, bcast32(x2 + (t) * xs + 4 * g)));
#define SCALE_P16(t)                                                                           \
    is##t = _mm256_add_epi32(is##t, _mm256_madd_epi16(p##t, sc));                              \
    js##t = _mm256_add_epi32(js##t, _mm256_madd_epi16(pb##t, sc));
/* The mins (or Q3_K / Q6_K's offsets times scales) of both levels, then
 * kernels.h's order. */
#define FINISH_K(t)                                                                            \
    {                                                                                          \
        __m256i m1 = _mm256_setzero_si256(), m2 = _mm256_setzero_si256();                      \
        for (int p = 0; p < npair; p++) {                                                      \
            __m256i mn = _mm256_loadu_si256((const __m256i *)(pk + f->off_mn + 64 * p));       \
            m1 = _mm256_add_epi32(m1, _mm256_madd_epi16(mn, bcast32(bs + (t) * bss + 2 * p))); \
            m2 = _mm256_add_epi32(m2, _mm256_madd_epi16(mn, bcast32(bs2 + (t) * bss + 2 * p))); \
        }                                                                                      \
        __m256 dx = _mm256_set1_ps(xd[(size_t)(t) * nb + i]);                                  \
        if (hm) {                                                                              \
            acc##t = _mm256_fmadd_ps(two_level8(is##t, js##t), _mm256_mul_ps(d, dx), acc##t);  \
            acc##t = _mm256_fnmadd_ps(two_level8(m1, m2), _mm256_mul_ps(dm, dx), acc##t);      \
        } else {                                                                               \
            __m256 v = two_level8(_mm256_sub_epi32(is##t, m1), _mm256_sub_epi32(js##t, m2));    \
            acc##t = _mm256_fmadd_ps(v, _mm256_mul_ps(d, dx), acc##t);                         \
        }                                                                                      \
    }
#define STORE_ACC(t) _mm256_storeu_ps(res + 16 * (t) + 8 * h, acc##t);

/* 32-element blocks: one pass for both levels; is = 256 * (products with
 * q) + (products with q2), exact in int32. */
#define SUM_P16(t)                                                                             \
    is##t = _mm256_add_epi32(is##t, _mm256_add_epi32(_mm256_madd_epi16(p##t, k256),            \
                                                     _mm256_madd_epi16(pb##t, ones)));
#define TILE_32(NT, HM)                                                                        \
    static void t32_##NT##_##HM(const tile_fmt *f, const uint8_t *pk0, int nb, const act_t *a, int t0, \
                                float *res) {                                                  \
        const int fl = flush_groups(f) < 8 ? flush_groups(f) : 8;                              \
        const __m256i ones = _mm256_set1_epi16(1), k256 = _mm256_set1_epi16(256);              \
        const size_t xs = (size_t)a->cols;                                                     \
        for (int h = 0; h < 2; h++) {                                                          \
            const uint8_t *pk = pk0 + 32 * h;                                                  \
            const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;           \
            const float *xd = a->d + (size_t)t0 * nb, *xsum = a->ds + (size_t)t0 * nb;         \
            const int32_t *xbs = a->bsum + (size_t)t0 * nb;                                    \
            const int off = f->offset, hm = HM;                                                \
            EACH_T##NT(DECL_ACC)                                                               \
            for (int i = 0; i < nb; i++, pk += f->blk_bytes, x += 32, x2 += 32) {              \
                EACH_T##NT(DECL_IS1)                                                           \
                for (int g0 = 0; g0 < 8; g0 += fl) {                                           \
                    EACH_T##NT(DECL_P16)                                                       \
                    for (int g = g0; g < g0 + fl; g++) {                                       \
                        __m256i q = _mm256_loadu_si256((const __m256i *)(pk + 64 * g));        \
                        EACH_T##NT(DOT_G)                                                      \
                    }                                                                          \
                    EACH_T##NT(SUM_P16)                                                        \
                }                                                                              \
                __m256 d = _mm256_loadu_ps((const float *)(pk + f->off_d)),                    \
                       m = _mm256_loadu_ps((const float *)(pk + f->off_m));                    \
                EACH_T##NT(FINISH_32)                                                          \
            }                                                                                  \
            EACH_T##NT(STORE_ACC)                                                              \
        }                                                                                      \
    }
#define DECL_IS1(t) __m256i is##t = _mm256_setzero_si256();

#define FINISH_32(t)                                                                           \
    {                                                                                          \
        size_t xb = (size_t)(t) * nb + i;                                                      \
        __m256i it = hm ? is##t : _mm256_sub_epi32(is##t, _mm256_set1_epi32(off * xbs[xb]));                 \
        acc##t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(it), _mm256_mul_ps(d, _mm256_set1_ps(xd[xb])), acc##t); \
        if (hm) acc##t = _mm256_fmadd_ps(m, _mm256_set1_ps(xsum[xb]), acc##t);                 \
    }

TILE_K(2, 8)
TILE_K(1, 8)
TILE_K(2, 16)
TILE_K(1, 16)
TILE_32(2, 0)
TILE_32(1, 0)
TILE_32(2, 1)
TILE_32(1, 1)

#define TILE_ENTRY(NAME, WIDE, NARROW, NW)                                                     \
    static void NAME(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0,     \
                     int nt, float *res) {                                                     \
        int t = 0;                                                                             \
        for (; t + NW <= nt; t += NW) WIDE(f, pk, nb, a, t0 + t, res + 16 * t);                \
        for (; t < nt; t++) NARROW(f, pk, nb, a, t0 + t, res + 16 * t);                        \
    }

TILE_ENTRY(tile_sub32, tk_8_2, tk_8_1, 2)
TILE_ENTRY(tile_sub16, tk_16_2, tk_16_1, 2)
TILE_ENTRY(tile_blk32_off, t32_2_0, t32_1_0, 2)
TILE_ENTRY(tile_blk32_min, t32_2_1, t32_1_1, 2)

/* Q4_0 / Q5_0 / Q8_0 take an integer offset off, Q4_1 / Q5_1 add a min. */
static void tile_blk32(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0, int nt,
                       float *res) {
    (f->has_min ? tile_blk32_min : tile_blk32_off)(f, pk, nb, a, t0, nt, res);
}

/* maddubs needs u * 127 * 2 within int16: not Q8_0's u up to 255. Below
 * these the few-token kernels win: Q4_0/Q4_1/Q5_0/Q5_1 and Q4_K transpose
 * 8 rows in registers for up to 4 tokens (rtile_avx2.h), cheaper than
 * packing up to 32-48 tokens (SmolLM2's and Gemma 3's matrices, one
 * thread: 46080 x 576 Q4_1 at 32 tokens 19.0 ms against 22.8, 36864 x 640
 * Q5_0 20.4 against 26.8, 5760 x 2048 Q4_K about even at 32); the other
 * k-quants' one-token kernels read each group of rows once for every token. */
const tile_kernels TILE_AVX2 = {tile_blk32, tile_sub32, tile_sub16, 63,
                                {[W_Q4_0] = 48, [W_Q4_1] = 48, [W_Q5_0] = 48, [W_Q5_1] = 48, [W_Q8_0] = 255,
                                 [W_Q2_K] = 24, [W_Q3_K] = 16, [W_Q4_K] = 32, [W_Q5_K] = 12, [W_Q6_K] = 24}};

/* The same kernels under the avx512 path of CPUs without VNNI, whose
 * few-token kernels are simd_avx512.c's (thresholds measured against those). */
const tile_kernels TILE_AVX2_UNDER_AVX512 = {tile_blk32, tile_sub32, tile_sub16, 63,
                                             {[W_Q4_0] = 8, [W_Q4_1] = 8, [W_Q5_0] = 12, [W_Q5_1] = 8, [W_Q8_0] = 255,
                                              [W_Q2_K] = 24, [W_Q3_K] = 16, [W_Q4_K] = 16, [W_Q5_K] = 12, [W_Q6_K] = 24}};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int tile_avx2_unused;
#endif
