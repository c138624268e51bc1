/* AVX-512 VNNI microkernels of the tile path (tile.h): one register holds
 * the 16 rows of a tile; each vpdpbusd multiplies a group of 4 unsigned
 * weights per row with 4 activations of one token broadcast to every row,
 * so the weights loaded once serve NT tokens and both levels of quants
 * (one pass, each level into its own registers). Sub-block scales are applied
 * once per sub-block (vpmulld), mins once per super-block (vpdpwssd),
 * float scales once per block. */
#include "tile.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#endif

#include <immintrin.h>

static inline __m512i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The token loops are spelled out (EACH_T) with one named register per
 * token: written as arrays, gcc kept part of them on the stack and every
 * group paid a store-to-load round trip. */
#define EACH_T1(X) X(0)
#define EACH_T3(X) X(0) X(1) X(2)
#define EACH_T4(X) X(0) X(1) X(2) X(3)

/* float(256 * i1 + i2) per lane, the exact value rounded once (kernels.h's
 * two_level; exact in double). */
static inline __m512 two_level16(__m512i i1, __m512i i2) {
    const __m512d k = _mm512_set1_pd(256.0);
    __m512d lo = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(i1)), k,
                                 _mm512_cvtepi32_pd(_mm512_castsi512_si256(i2)));
    __m512d hi = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(i1, 1)), k,
                                 _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(i2, 1)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

/* k-quants: NSUB scale sub-blocks of 256 / NSUB elements per super-block.
 * One pass over the weights for both levels, each into its own registers
 * (r / is, s / js): half as long dependency chains as level after level. */
#define TILE_K(NT, NSUB)                                                                       \
    static void tk_##NSUB##_##NT(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, \
                                 int t0, float *res) {                                         \
        const size_t xs = (size_t)a->cols, bss = NSUB == 8 ? a->cols / 32 : a->cols / 16;      \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb;                                              \
        const int16_t *bs = (NSUB == 8 ? a->sum32 : a->sum) + (size_t)t0 * bss;                \
        const int16_t *bs2 = (NSUB == 8 ? a->sum32_2 : a->sum2) + (size_t)t0 * bss;            \
        const int hm = f->has_min, npair = NSUB / 2;                                           \
        EACH_T##NT(DECL_ACC)                                                                   \
        for (int i = 0; i < nb; i++, pk += f->blk_bytes, x += QK_K, x2 += QK_K, bs += NSUB, bs2 += NSUB) { \
            EACH_T##NT(DECL_IS)                                                                \
            for (int s = 0; s < NSUB; s++) {                                                   \
                EACH_T##NT(DECL_R2)                                                            \
                _Pragma("GCC unroll 8")                                                        \
                for (int g = s * (64 / NSUB); g < (s + 1) * (64 / NSUB); g++) {                \
                    __m512i q = _mm512_load_si512(pk + 64 * g);                                \
                    EACH_T##NT(DOT_G2)                                                         \
                }                                                                              \
                __m512i sc = _mm512_load_si512(pk + f->off_sc + 64 * s);                       \
                EACH_T##NT(SCALE_R)                                                            \
            }                                                                                  \
            __m512 d = _mm512_load_ps(pk + f->off_d), dm = _mm512_load_ps(pk + f->off_m);     \
            EACH_T##NT(FINISH_K)                                                               \
        }                                                                                      \
        EACH_T##NT(STORE_ACC)                                                                  \
    }

#define DECL_R2(t) __m512i r##t = _mm512_setzero_si512(), s##t = _mm512_setzero_si512();
#define DOT_G2(t)                                                                              \
    r##t = _mm512_dpbusd_epi32(r##t, q, bcast32(x + (t) * xs + 4 * g));                        \
    s##t = _mm512_dpbusd_epi32(s##t, q, bcast32(x2 + (t) * xs + 4 * g));
#define DECL_ACC(t) __m512 acc##t = _mm512_setzero_ps();
#define DECL_IS(t) __m512i is##t = _mm512_setzero_si512(), js##t = _mm512_setzero_si512();
#define SCALE_R(t)                                                                             \
    is##t = _mm512_add_epi32(is##t, _mm512_mullo_epi32(r##t, sc));                             \
    js##t = _mm512_add_epi32(js##t, _mm512_mullo_epi32(s##t, sc));
/* The mins (or Q3_K / Q6_K's offsets times scales) of both levels, then
 * kernels.h's order; Q3_K / Q6_K take their offsets' terms off in integers. */
#define FINISH_K(t)                                                                            \
    {                                                                                          \
        __m512i m1 = _mm512_setzero_si512(), m2 = _mm512_setzero_si512();                      \
        for (int p = 0; p < npair; p++) {                                                      \
            __m512i mn = _mm512_load_si512(pk + f->off_mn + 64 * p);                           \
            m1 = _mm512_dpwssd_epi32(m1, mn, bcast32(bs + (t) * bss + 2 * p));                 \
            m2 = _mm512_dpwssd_epi32(m2, mn, bcast32(bs2 + (t) * bss + 2 * p));                \
        }                                                                                      \
        __m512 dx = _mm512_set1_ps(xd[(size_t)(t) * nb + i]);                                  \
        if (hm) {                                                                              \
            acc##t = _mm512_fmadd_ps(two_level16(is##t, js##t), _mm512_mul_ps(d, dx), acc##t);  \
            acc##t = _mm512_fnmadd_ps(two_level16(m1, m2), _mm512_mul_ps(dm, dx), acc##t);     \
        } else {                                                                               \
            __m512 v = two_level16(_mm512_sub_epi32(is##t, m1), _mm512_sub_epi32(js##t, m2));   \
            acc##t = _mm512_fmadd_ps(v, _mm512_mul_ps(d, dx), acc##t);                         \
        }                                                                                      \
    }
#define STORE_ACC(t) _mm512_storeu_ps(res + 16 * (t), acc##t);

/* 32-element blocks: value = D * (u - offset) + M. One pass over the
 * weights for both levels, each into its own register (r, r2): two chains
 * of 8 dependent vpdpbusd per token instead of one of 16 (measured: the
 * chains' latency was the limit); r = 256 * r + r2, exact in int32. */
#define JOIN_R(t) r##t = _mm512_add_epi32(_mm512_slli_epi32(r##t, 8), s##t);
#define TILE_32(NT, HM)                                                                        \
    static void t32_##NT##_##HM(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0, \
                                float *res) {                                                  \
        const size_t xs = (size_t)a->cols;                                                     \
        const int8_t *x = a->q + (size_t)t0 * xs, *x2 = a->q2 + (size_t)t0 * xs;               \
        const float *xd = a->d + (size_t)t0 * nb, *xsum = a->ds + (size_t)t0 * nb;             \
        const int32_t *xbs = a->bsum + (size_t)t0 * nb;                                        \
        const int off = f->offset, hm = HM;                                                    \
        EACH_T##NT(DECL_ACC)                                                                   \
        for (int i = 0; i < nb; i++, pk += f->blk_bytes, x += 32, x2 += 32) {                  \
            EACH_T##NT(DECL_R2)                                                                \
            _Pragma("GCC unroll 8")                                                            \
            for (int g = 0; g < 8; g++) {                                                      \
                __m512i q = _mm512_load_si512(pk + 64 * g);                                    \
                EACH_T##NT(DOT_G2)                                                             \
            }                                                                                  \
            EACH_T##NT(JOIN_R)                                                                 \
            __m512 d = _mm512_load_ps(pk + f->off_d), m = _mm512_load_ps(pk + f->off_m);      \
            EACH_T##NT(FINISH_32)                                                              \
        }                                                                                      \
        EACH_T##NT(STORE_ACC)                                                                  \
    }

#define FINISH_32(t)                                                                           \
    {                                                                                          \
        size_t xb = (size_t)(t) * nb + i;                                                      \
        __m512i it = hm ? r##t : _mm512_sub_epi32(r##t, _mm512_set1_epi32(off * xbs[xb]));      \
        acc##t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(it), _mm512_mul_ps(d, _mm512_set1_ps(xd[xb])), acc##t); \
        if (hm) acc##t = _mm512_fmadd_ps(m, _mm512_set1_ps(xsum[xb]), acc##t);                 \
    }

TILE_K(3, 8)
TILE_K(1, 8)
TILE_K(3, 16)
TILE_K(1, 16)
TILE_32(4, 0)
TILE_32(1, 0)
TILE_32(4, 1)
TILE_32(1, 1)

/* Blocks of the widest NT, then the rest one token at a time. */
#define TILE_ENTRY(NAME, WIDE, NARROW, NW)                                                     \
    static void NAME(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0,     \
                     int nt, float *res) {                                                     \
        int t = 0;                                                                             \
        for (; t + NW <= nt; t += NW) WIDE(f, pk, nb, a, t0 + t, res + 16 * t);                \
        for (; t < nt; t++) NARROW(f, pk, nb, a, t0 + t, res + 16 * t);                        \
    }

TILE_ENTRY(tile_sub32, tk_8_3, tk_8_1, 3)
TILE_ENTRY(tile_sub16, tk_16_3, tk_16_1, 3)
TILE_ENTRY(tile_blk32_off, t32_4_0, t32_1_0, 4)
TILE_ENTRY(tile_blk32_min, t32_4_1, t32_1_1, 4)

/* Q4_0 / Q5_0 / Q8_0 take an integer offset off, Q4_1 / Q5_1 add a min. */
static void tile_blk32(const tile_fmt *f, const uint8_t *pk, int nb, const act_t *a, int t0, int nt,
                       float *res) {
    (f->has_min ? tile_blk32_min : tile_blk32_off)(f, pk, nb, a, t0, nt, res);
}

/* Below these the few-token kernels win: the 32-element types, Q4_K and
 * Q6_K transpose 16 rows in registers for up to 8 tokens (rtile_avx512.h),
 * cheaper than packing up to 48-64 tokens (SmolLM2's and Gemma 3's
 * matrices, one thread: 46080 x 576 Q4_1 at 64 tokens 15.6 ms against
 * 16.4, 5760 x 2048 Q4_K 5.9 against 7.4, Q6_K even at 48); the other
 * k-quants' one-token kernels read each group of rows once for every token. */
const tile_kernels TILE_AVX512_VNNI = {tile_blk32, tile_sub32, tile_sub16, 255,
                                       {[W_Q4_0] = 64, [W_Q4_1] = 64, [W_Q5_0] = 64, [W_Q5_1] = 64, [W_Q8_0] = 64,
                                        [W_Q2_K] = 16, [W_Q3_K] = 12, [W_Q4_K] = 64, [W_Q5_K] = 12, [W_Q6_K] = 48}};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int tile_avx512_unused;
#endif
