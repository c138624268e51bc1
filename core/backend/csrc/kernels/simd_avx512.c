/* Hand-written AVX-512 (F/BW/VL/DQ) kernels for the hot weight types: the
 * AVX2 arithmetic of simd_x86.h on 64-byte registers (two 32-element blocks,
 * or 64 elements of a k-quant super-block, per register). The other types
 * keep the generic.h build of isa_avx512.c.
 *
 * No VNNI: every product here is maddubs (u8 x s8 -> int16 pairs) followed
 * by a madd that either sums pairs or applies the k-quants' integer
 * sub-block scales; vpdpbusd would replace only the first kind, and the
 * measured gain at T = 1 was within noise, so one code path serves every
 * AVX-512 CPU. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif

#include "simd_x86.h"
#include "tile.h"

static inline __m512i mul_sum_us8_512(__m512i u, __m512i s) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Two blocks' 16 nibble bytes -> 64 bytes in element order per block. */
static inline __m512i nibbles64(const uint8_t *p0, const uint8_t *p1) {
    __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                        _mm_loadu_si128((const __m128i *)p1), 1);
    __m512i z = join256(t, _mm256_srli_epi16(t, 4)); /* lo0 lo1 hi0 hi1 */
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)); /* lo0 hi0 lo1 hi1 */
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

/* The first two f16 of each of 4 blocks (d, and m or whatever follows d),
 * as per-lane floats of two block pairs: d01/d23 hold d of blocks 0, 1 /
 * 2, 3 over 8 lanes each, m01/m23 the second value. One conversion and four
 * permutes per 4 blocks, instead of broadcasting each f16 on its own. */
typedef struct {
    __m512 d01, d23, m01, m23;
} scales4;

static inline scales4 scales_of_4(const uint8_t *b, int bb) {
    __m128i h = _mm_setr_epi32((int)rd32(b), (int)rd32(b + bb), (int)rd32(b + 2 * bb), (int)rd32(b + 3 * bb));
    __m512 f = _mm512_castps256_ps512(_mm256_cvtph_ps(h)); /* d0 m0 d1 m1 d2 m2 d3 m3 */
    const __m512i i0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i one = _mm512_set1_epi32(1), four = _mm512_set1_epi32(4);
    scales4 s;
    s.d01 = _mm512_permutexvar_ps(i0, f);
    s.m01 = _mm512_permutexvar_ps(_mm512_add_epi32(i0, one), f);
    s.d23 = _mm512_permutexvar_ps(_mm512_add_epi32(i0, four), f);
    s.m23 = _mm512_permutexvar_ps(_mm512_add_epi32(i0, _mm512_add_epi32(four, one)), f);
    return s;
}

/* Four blocks per step as two pairs (a->s4/d8/ds8 have 8 lanes per block,
 * so 16 per pair); the last nb % 4 blocks one at a time on 256 bits. BODY
 * sees the pair's blocks b0, b1, activations xv, lane index li and its
 * per-lane scales sd (d) and sm (the second f16). */
#define DOT32_4(NAME, BB, BODY)                                                                \
    static float dot4_##NAME(const uint8_t *row, int nb, const act_t *a, int t) {              \
        size_t l0 = (size_t)t * (a->cols / 4);                                                 \
        const int8_t *x = a->q + (size_t)t * a->cols;                                          \
        const int32_t *s4 = a->s4 + l0;                                                        \
        const float *d8 = a->d8 + l0, *ds8 = a->ds8 + l0;                                      \
        __m512 acc2[2], accm2[2];                                                              \
        acc2[0] = acc2[1] = accm2[0] = accm2[1] = _mm512_setzero_ps();                         \
        int i = 0;                                                                             \
        for (; i + 4 <= nb; i += 4) {                                                          \
            scales4 sc = scales_of_4(row + (size_t)i * BB, BB);                                \
            for (int j = 0; j < 2; j++) {                                                      \
                const uint8_t *b0 = row + (size_t)(i + 2 * j) * BB, *b1 = b0 + BB;             \
                __m512i xv = _mm512_loadu_si512(x + 32 * (i + 2 * j));                         \
                size_t li = 8 * (size_t)(i + 2 * j);                                           \
                __m512 sd = j ? sc.d23 : sc.d01, sm = j ? sc.m23 : sc.m01;                     \
                __m512 acc = acc2[j], accm = accm2[j];                                         \
                (void)sm;                                                                      \
                BODY                                                                           \
                acc2[j] = acc;                                                                 \
                accm2[j] = accm;                                                               \
            }                                                                                  \
        }                                                                                      \
        __m512 all = _mm512_add_ps(_mm512_add_ps(acc2[0], acc2[1]), _mm512_add_ps(accm2[0], accm2[1])); \
        float s = _mm512_reduce_add_ps(all);                                                   \
        __m256 tail = _mm256_setzero_ps(), tailm = _mm256_setzero_ps();                        \
        for (; i < nb; i++) {                                                                  \
            const uint8_t *b = row + (size_t)i * BB;                                           \
            blk_##NAME(b, x + 32 * i, s4 + 8 * i, d8 + 8 * i, ds8 + 8 * i,                     \
                       _mm256_set1_ps(h2f(b)), _mm256_set1_ps(h2f(b + 2)), &tail, &tailm);     \
        }                                                                                      \
        return s + hsum256(_mm256_add_ps(tail, tailm));                                        \
    }

#define SCALED(P) _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), _mm512_mul_ps(sd, _mm512_loadu_ps(d8 + li)), acc)
#define MINS() accm = _mm512_fmadd_ps(sm, _mm512_loadu_ps(ds8 + li), accm);
#define S4(SHIFT) _mm512_slli_epi32(_mm512_loadu_si512(s4 + li), SHIFT)

static inline __m512i fifth_bits64(const uint8_t *p0, const uint8_t *p1) {
    __mmask64 k = (__mmask64)rd32(p0) | (__mmask64)rd32(p1) << 32;
    return _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10));
}

DOT32_4(q4_0, 18, {
    __m512i p = _mm512_sub_epi32(mul_sum_us8_512(nibbles64(b0 + 2, b1 + 2), xv), S4(3));
    acc = SCALED(p);
})

DOT32_4(q4_1, 20, {
    __m512i p = mul_sum_us8_512(nibbles64(b0 + 4, b1 + 4), xv);
    acc = SCALED(p);
    MINS()
})

DOT32_4(q5_0, 22, {
    __m512i w = _mm512_or_si512(nibbles64(b0 + 6, b1 + 6), fifth_bits64(b0 + 2, b1 + 2));
    __m512i p = _mm512_sub_epi32(mul_sum_us8_512(w, xv), S4(4));
    acc = SCALED(p);
})

DOT32_4(q5_1, 24, {
    __m512i w = _mm512_or_si512(nibbles64(b0 + 8, b1 + 8), fifth_bits64(b0 + 4, b1 + 4));
    __m512i p = mul_sum_us8_512(w, xv);
    acc = SCALED(p);
    MINS()
})

DOT32_4(q8_0, 34, {
    __m512i w = join256(_mm256_loadu_si256((const __m256i *)(b0 + 2)),
                        _mm256_loadu_si256((const __m256i *)(b1 + 2)));
    __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(w), _mm512_setzero_si512(), xv);
    __m512i p = mul_sum_us8_512(_mm512_abs_epi8(w), sx);
    acc = SCALED(p);
})

/* ---- k-quants: 64 elements (4 or 2 scale sub-blocks) per register ------- */

static inline void k4_unpack_scales(const uint8_t *p, uint64_t *sc, uint64_t *mn) {
    uint32_t u0 = rd32(p), u1 = rd32(p + 4), u2 = rd32(p + 8);
    *sc = (uint64_t)(u0 & 0x3f3f3f3fu) |
          (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
    *mn = (uint64_t)(u1 & 0x3f3f3f3fu) |
          (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
}

/* int16 lane indices: register c of a super-block covers sub-blocks
 * per_reg * c .. per_reg * (c + 1) - 1, each over 32 / per_reg int16 lanes. */
static inline __m512i scale_index(int c, int per_reg) {
    int16_t idx[32];
    for (int l = 0; l < 32; l++) idx[l] = (int16_t)(per_reg * c + l / (32 / per_reg));
    return _mm512_loadu_si512(idx);
}

static float dot1_q4_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i ix0 = scale_index(0, 2), ix1 = scale_index(1, 2), ix2 = scale_index(2, 2),
                  ix3 = scale_index(3, 2);
    const int8_t *x = a->q + (size_t)t * a->cols;
    const float *xd = a->d + (size_t)t * nb;
    const int16_t *bs = a->sum + (size_t)t * (a->cols / 16);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, row += 144, x += QK_K, bs += 16) {
        uint64_t sc, mn;
        k4_unpack_scales(row + 4, &sc, &mn);
        __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        __m512i isum = _mm512_setzero_si512();
#define Q4K_STEP(c, ix)                                                                        \
        {                                                                                      \
            __m256i q = _mm256_loadu_si256((const __m256i *)(row + 16 + 32 * c));              \
            __m512i w = _mm512_and_si512(join256(q, _mm256_srli_epi16(q, 4)), m4);             \
            __m512i p = _mm512_maddubs_epi16(w, _mm512_loadu_si512(x + 64 * c));               \
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, _mm512_permutexvar_epi16(ix, s16))); \
        }
        Q4K_STEP(0, ix0) Q4K_STEP(1, ix1) Q4K_STEP(2, ix2) Q4K_STEP(3, ix3)
#undef Q4K_STEP
        __m128i m = _mm_cvtsi64_si128((long long)mn);
        __m256i msum = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs),
                                         _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)));
        float dx = xd[i];
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(row) * dx), acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(h2f(row + 2) * dx), accm);
    }
    return _mm512_reduce_add_ps(acc) - hsum256(accm);
}

static float dot1_q6_k(const uint8_t *row, int nb, const act_t *a, int t) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i ix0 = scale_index(0, 4), ix1 = scale_index(1, 4), ix2 = scale_index(2, 4),
                  ix3 = scale_index(3, 4);
    const int8_t *x = a->q + (size_t)t * a->cols;
    const float *xd = a->d + (size_t)t * nb;
    const int16_t *bs = a->sum + (size_t)t * (a->cols / 16);
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++, row += 210, x += QK_K, bs += 16) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
        __m512i s16 = _mm512_castsi256_si512(sc16);
        __m512i isum = _mm512_setzero_si512();
#define Q6K_HALF(h, ixa, ixb)                                                                  \
        {                                                                                      \
            __m512i ql = _mm512_loadu_si512(row + 64 * h);                                     \
            __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));            \
            __m512i qh2 = join256(qh, _mm256_srli_epi16(qh, 2));                               \
            __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, m4),                             \
                                         _mm512_and_si512(_mm512_slli_epi16(qh2, 4), m30));    \
            __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),       \
                                         _mm512_and_si512(qh2, m30));                          \
            __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(x + 128 * h));            \
            __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(x + 128 * h + 64));       \
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pa, _mm512_permutexvar_epi16(ixa, s16))); \
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pb, _mm512_permutexvar_epi16(ixb, s16))); \
        }
        Q6K_HALF(0, ix0, ix1) Q6K_HALF(1, ix2, ix3)
#undef Q6K_HALF
        /* the stored 6-bit values are q + 32 */
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bs), sc16);
        isum = _mm512_sub_epi32(isum, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_slli_epi32(off, 5), 0));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(h2f(row + 208) * xd[i]), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* One token at a time: each row streamed once per token. */
#define MM_ROWDOT(NAME, DOT, NBLK)                                                             \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        int nb = a->cols / NBLK;                                                               \
        for (int r = r0; r < r1; r++)                                                          \
            for (int t = 0; t < a->T; t++) out[t * os + r] = DOT(w + (size_t)r * rb, nb, a, t); \
    }

MM_ROWDOT(q4_0, dot4_q4_0, 32)
MM_ROWDOT(q4_1, dot4_q4_1, 32)
MM_ROWDOT(q5_0, dot4_q5_0, 32)
MM_ROWDOT(q5_1, dot4_q5_1, 32)
MM_ROWDOT(q8_0, dot4_q8_0, 32)
MM_ROWDOT(q4_k, dot1_q4_k, QK_K)
MM_ROWDOT(q6_k, dot1_q6_k, QK_K)

/* Few tokens: the kernels above (or generic.h's); more: the tile path. */
static mm_fn small[W_COUNT];
static const tile_kernels *tiles;

#define MM_TILED(WT)                                                                           \
    static void mm_tiled_##WT(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,     \
                              float *out, ptrdiff_t os) {                                      \
        if (a->T >= tile_min_tokens(WT) && tile_mm(tiles, WT, w, rb, r0, r1, a, out, os)) return;          \
        small[WT](w, rb, r0, r1, a, out, os);                                                  \
    }

MM_TILED(W_Q4_0)
MM_TILED(W_Q4_1)
MM_TILED(W_Q5_0)
MM_TILED(W_Q5_1)
MM_TILED(W_Q8_0)
MM_TILED(W_Q2_K)
MM_TILED(W_Q3_K)
MM_TILED(W_Q4_K)
MM_TILED(W_Q5_K)
MM_TILED(W_Q6_K)

void simd_fill_avx512(isa_table *t) {
    memcpy(small, t->mm, sizeof small);
    small[W_Q4_0] = mm_q4_0;
    small[W_Q4_1] = mm_q4_1;
    small[W_Q5_0] = mm_q5_0;
    small[W_Q5_1] = mm_q5_1;
    small[W_Q8_0] = mm_q8_0;
    small[W_Q4_K] = mm_q4_k;
    small[W_Q6_K] = mm_q6_k;
    __builtin_cpu_init();
    tiles = __builtin_cpu_supports("avx512vnni") ? &TILE_AVX512_VNNI : &TILE_AVX2;
    static const int tiled[] = {W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0,
                                W_Q2_K, W_Q3_K, W_Q4_K, W_Q5_K, W_Q6_K};
    static const mm_fn tiled_fn[] = {mm_tiled_W_Q4_0, mm_tiled_W_Q4_1, mm_tiled_W_Q5_0,
                                     mm_tiled_W_Q5_1, mm_tiled_W_Q8_0, mm_tiled_W_Q2_K,
                                     mm_tiled_W_Q3_K, mm_tiled_W_Q4_K, mm_tiled_W_Q5_K,
                                     mm_tiled_W_Q6_K};
    for (size_t i = 0; i < sizeof tiled / sizeof tiled[0]; i++) t->mm[tiled[i]] = tiled_fn[i];
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx512_unused;
#endif
