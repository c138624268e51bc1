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

#define SIMD_VNNI 1
#include "simd_avx512.h" /* two_level16 */

static inline __m512i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* acc + the 4-byte groups of q times the 4 bytes at p broadcast to every
 * lane. Written out so that the broadcast is the instruction's memory
 * operand: gcc emits a separate vpbroadcastd for the intrinsics, which
 * takes a vector pipe and ran the tile kernels ~30% slower (measured on
 * Zen 5). */
static inline __m512i dpbusd_bcast(__m512i acc, __m512i q, const void *p) {
#if defined(__GNUC__)
    __asm__("vpdpbusd %[m]%{1to16%}, %[q], %[acc]" : [acc] "+v"(acc) : [q] "v"(q), [m] "m"(*(const int32_t *)p));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, q, bcast32(p));
#endif
}

/* The same for vpdpwssd (pairs of int16). */
static inline __m512i dpwssd_bcast(__m512i acc, __m512i q, const void *p) {
#if defined(__GNUC__)
    __asm__("vpdpwssd %[m]%{1to16%}, %[q], %[acc]" : [acc] "+v"(acc) : [q] "v"(q), [m] "m"(*(const int32_t *)p));
    return acc;
#else
    return _mm512_dpwssd_epi32(acc, q, bcast32(p));
#endif
}

/* The token loops are spelled out (EACH_T) with one named register per
 * token: written as arrays, gcc kept part of them on the stack and every
 * group paid a store-to-load round trip. */
#define EACH_T1(X) X(0)
#define EACH_T4(X) X(0) X(1) X(2) X(3)

/* Groups of one sub-block, spelled out: with a loop over them gcc kept the
 * accumulators moving between registers every group (two moves per
 * vpdpbusd). */
#define GROUPS4(X) X(0) X(1) X(2) X(3)
#define GROUPS8(X) GROUPS4(X) X(4) X(5) X(6) X(7)
#define GROUP_T4(g) { __m512i q = _mm512_load_si512(pq + 64 * (g)); EACH_T4(DOT_G2_##g) }
#define GROUP_T1(g) { __m512i q = _mm512_load_si512(pq + 64 * (g)); EACH_T1(DOT_G2_##g) }

/* Where token t's 4 bytes of group g are, from xa (first level) and xb
 * (second): with TILED, in act_t.qt's runs of 32 bytes per group (tokens
 * t0 .. t0 + 3); else in q and q2 (one token). */
#define X_INIT(TILED, G0)                                                                      \
    const size_t tstr = TILED ? 4 : xs, gstr = TILED ? 8 * ACT_TILE_T : 4;                     \
    const int8_t *xa = (TILED ? a->qt + (size_t)(t0 / ACT_TILE_T) * 2 * ACT_TILE_T * xs        \
                              : a->q + (size_t)t0 * xs) + (size_t)(G0) * gstr;                 \
    const int8_t *xb = (TILED ? xa + 4 * ACT_TILE_T : a->q2 + (size_t)t0 * xs + (size_t)(G0) * gstr);

/* Out of line: inlined in every token's finish, the rare path made gcc spill. */
__attribute__((noinline)) static __m512 two_level16_far(__m512i i1, __m512i i2) { return two_level16(i1, i2); }

/* The same value, cheaper, where every lane has |i1| < 2^22 and |i2| < 2^29:
 * then 256 * i1 + i2 is exact in int32 and one conversion rounds it once.
 * (Measured on the random 1B model's Q6_K ffn_down: |I2| passes 2^22 in
 * 1.6% of lanes, |I1| in 0.01%; so the bound on I2 is the loose one, or a
 * quarter of the vectors would take the slow path.) */
static inline __m512 two_level16_fast(__m512i i1, __m512i i2) {
    __mmask16 out = _mm512_test_epi32_mask(_mm512_add_epi32(i1, _mm512_set1_epi32(1 << 22)),
                                           _mm512_set1_epi32((int)0xFF800000u)) |
                    _mm512_test_epi32_mask(_mm512_add_epi32(i2, _mm512_set1_epi32(1 << 29)),
                                           _mm512_set1_epi32((int)0xC0000000u));
    if (__builtin_expect(out != 0, 0)) return two_level16_far(i1, i2);
    return _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(i1, 8), i2));
}

/* k-quants: NSUB scale sub-blocks of 256 / NSUB elements (GPS groups of 4)
 * per super-block. One pass over the weights for both levels, each into its
 * own registers (r / is, s / js). */
#define TILE_K(NT, NSUB, GPS, TILED)                                                           \
    static void tk_##NSUB##_##NT(const tile_fmt *f, const uint8_t *pk, int b0, int nbk, const act_t *a, \
                                 int t0, float *res, int accumulate) {                         \
        const int nb = a->cols / QK_K;                                                         \
        const size_t xs = (size_t)a->cols, bss = NSUB == 8 ? a->cols / 32 : a->cols / 16;      \
        X_INIT(TILED, b0 * (QK_K / 4))                                                         \
        const float *xd = a->d + (size_t)t0 * nb;                                              \
        const int16_t *bs = (NSUB == 8 ? a->sum32 : a->sum) + (size_t)t0 * bss + b0 * NSUB;   \
        const int16_t *bs2 = (NSUB == 8 ? a->sum32_2 : a->sum2) + (size_t)t0 * bss + b0 * NSUB; \
        const int hm = f->has_min, npair = NSUB / 2;                                           \
        EACH_T##NT(DECL_ACC)                                                                   \
        pk += (size_t)b0 * f->blk_bytes;                                                       \
        for (int i = b0; i < b0 + nbk; i++, pk += f->blk_bytes, bs += NSUB, bs2 += NSUB) {     \
            EACH_T##NT(DECL_IS)                                                                \
            const uint8_t *pq = pk, *psc = pk + f->off_sc;                                     \
            for (int s = 0; s < NSUB; s++, pq += 64 * GPS, psc += 64, xa += GPS * gstr, xb += GPS * gstr) { \
                EACH_T##NT(DECL_R2)                                                            \
                GROUPS##GPS(GROUP_T##NT)                                                       \
                __m512i sc = _mm512_load_si512(psc);                                           \
                EACH_T##NT(SCALE_R)                                                            \
            }                                                                                  \
            __m512 d = _mm512_load_ps(pk + f->off_d), dm = _mm512_load_ps(pk + f->off_m);     \
            EACH_T##NT(FINISH_K)                                                               \
        }                                                                                      \
        EACH_T##NT(STORE_ACC)                                                                  \
    }

#define DOT_TG(t, g)                                                                           \
    r##t = dpbusd_bcast(r##t, q, xa + (t) * tstr + (g) * gstr);                                \
    s##t = dpbusd_bcast(s##t, q, xb + (t) * tstr + (g) * gstr);
#define DOT_G2_0(t) DOT_TG(t, 0)
#define DOT_G2_1(t) DOT_TG(t, 1)
#define DOT_G2_2(t) DOT_TG(t, 2)
#define DOT_G2_3(t) DOT_TG(t, 3)
#define DOT_G2_4(t) DOT_TG(t, 4)
#define DOT_G2_5(t) DOT_TG(t, 5)
#define DOT_G2_6(t) DOT_TG(t, 6)
#define DOT_G2_7(t) DOT_TG(t, 7)
#define DECL_R2(t) __m512i r##t = _mm512_setzero_si512(), s##t = _mm512_setzero_si512();
#define DECL_ACC(t) __m512 acc##t = accumulate ? _mm512_loadu_ps(res + 16 * (t)) : _mm512_setzero_ps();
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
            m1 = dpwssd_bcast(m1, mn, bs + (t) * bss + 2 * p);                                 \
            m2 = dpwssd_bcast(m2, mn, bs2 + (t) * bss + 2 * p);                                \
        }                                                                                      \
        __m512 dx = _mm512_set1_ps(xd[(size_t)(t) * nb + i]);                                  \
        if (hm) {                                                                              \
            acc##t = _mm512_fmadd_ps(two_level16_fast(is##t, js##t), _mm512_mul_ps(d, dx), acc##t); \
            acc##t = _mm512_fnmadd_ps(two_level16_fast(m1, m2), _mm512_mul_ps(dm, dx), acc##t); \
        } else {                                                                               \
            __m512 v = two_level16_fast(_mm512_sub_epi32(is##t, m1), _mm512_sub_epi32(js##t, m2)); \
            acc##t = _mm512_fmadd_ps(v, _mm512_mul_ps(d, dx), acc##t);                         \
        }                                                                                      \
    }
#define STORE_ACC(t) _mm512_storeu_ps(res + 16 * (t), acc##t);

/* 32-element blocks: value = D * (u - offset) + M. One pass over the
 * weights for both levels, each into its own register (r, r2): two chains
 * of 8 dependent vpdpbusd per token instead of one of 16 (measured: the
 * chains' latency was the limit); r = 256 * r + r2, exact in int32. */
#define JOIN_R(t) r##t = _mm512_add_epi32(_mm512_slli_epi32(r##t, 8), s##t);
#define TILE_32(NT, HM, TILED)                                                                 \
    static void t32_##NT##_##HM(const tile_fmt *f, const uint8_t *pk, int b0, int nbk, const act_t *a, \
                                int t0, float *res, int accumulate) {                          \
        const int nb = a->cols / 32;                                                           \
        const size_t xs = (size_t)a->cols;                                                     \
        X_INIT(TILED, b0 * 8)                                                                  \
        const float *xd = a->d + (size_t)t0 * nb, *xsum = a->ds + (size_t)t0 * nb;             \
        const int32_t *xbs = a->bsum + (size_t)t0 * nb;                                        \
        const int off = f->offset, hm = HM;                                                    \
        EACH_T##NT(DECL_ACC)                                                                   \
        pk += (size_t)b0 * f->blk_bytes;                                                       \
        for (int i = b0; i < b0 + nbk; i++, pk += f->blk_bytes, xa += 8 * gstr, xb += 8 * gstr) { \
            EACH_T##NT(DECL_R2)                                                                \
            const uint8_t *pq = pk;                                                            \
            GROUPS8(GROUP_T##NT)                                                               \
            EACH_T##NT(JOIN_R)                                                                 \
            __m512 d = _mm512_load_ps(pk + f->off_d), m = _mm512_load_ps(pk + f->off_m);      \
            EACH_T##NT(FINISH_32)                                                              \
        }                                                                                      \
        EACH_T##NT(STORE_ACC)                                                                  \
    }

#define FINISH_32(t)                                                                           \
    {                                                                                          \
        size_t ib = (size_t)(t) * nb + i;                                                      \
        __m512i it = hm ? r##t : _mm512_sub_epi32(r##t, _mm512_set1_epi32(off * xbs[ib]));      \
        acc##t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(it), _mm512_mul_ps(d, _mm512_set1_ps(xd[ib])), acc##t); \
        if (hm) acc##t = _mm512_fmadd_ps(m, _mm512_set1_ps(xsum[ib]), acc##t);                 \
    }

TILE_K(4, 8, 8, 1)
TILE_K(1, 8, 8, 0)
TILE_K(4, 16, 4, 1)
TILE_K(1, 16, 4, 0)
TILE_32(4, 0, 1)
TILE_32(1, 0, 0)
TILE_32(4, 1, 1)
TILE_32(1, 1, 0)

/* Blocks of ACT_TILE_T tokens through the wide kernel on act_t.qt (t0 is a
 * multiple of it: tile_pack.c's token blocks are), the rest (or all, without
 * qt) one token at a time. */
#define TILE_ENTRY_QT(NAME, WIDE, NARROW)                                                      \
    static void NAME(const tile_fmt *f, const uint8_t *pk, int b0, int nbk, const act_t *a, int t0, \
                     int nt, float *res, int acc) {                                            \
        int t = 0;                                                                             \
        if (a->qt)                                                                             \
            for (; t + ACT_TILE_T <= nt; t += ACT_TILE_T) WIDE(f, pk, b0, nbk, a, t0 + t, res + 16 * t, acc); \
        for (; t < nt; t++) NARROW(f, pk, b0, nbk, a, t0 + t, res + 16 * t, acc);              \
    }

TILE_ENTRY_QT(tile_sub32, tk_8_4, tk_8_1)
TILE_ENTRY_QT(tile_sub16, tk_16_4, tk_16_1)
TILE_ENTRY_QT(tile_blk32_off, t32_4_0, t32_1_0)
TILE_ENTRY_QT(tile_blk32_min, t32_4_1, t32_1_1)

/* Q4_0 / Q5_0 / Q8_0 take an integer offset off, Q4_1 / Q5_1 add a min. */
static void tile_blk32(const tile_fmt *f, const uint8_t *pk, int b0, int nbk, const act_t *a, int t0, int nt,
                       float *res, int acc) {
    (f->has_min ? tile_blk32_min : tile_blk32_off)(f, pk, b0, nbk, a, t0, nt, res, acc);
}

/* Below these the few-token kernels win: the 32-element types, Q4_K and
 * Q6_K transpose 16 rows in registers for up to 8 tokens (rtile_avx512.h),
 * cheaper than packing up to 48-64 tokens (SmolLM2's and Gemma 3's
 * matrices, one thread: 46080 x 576 Q4_1 at 64 tokens 15.6 ms against
 * 16.4, 5760 x 2048 Q4_K 5.9 against 7.4, Q6_K even at 48); the other
 * k-quants' one-token kernels read each group of rows once for every token. */
const tile_kernels TILE_AVX512_VNNI = {NULL, NULL, NULL, 255,
                                       {[W_Q4_0] = 64, [W_Q4_1] = 64, [W_Q5_0] = 64, [W_Q5_1] = 64, [W_Q8_0] = 64,
                                        [W_Q2_K] = 16, [W_Q3_K] = 12, [W_Q4_K] = 64, [W_Q5_K] = 12, [W_Q6_K] = 48},
                                       tile_blk32, tile_sub32, tile_sub16};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int tile_avx512_unused;
#endif
