/* Hand-written AVX2 + FMA + F16C one-token kernels of the 32-element block
 * types (the arithmetic is in simd_x86.h); the k-quants are in
 * simd_k_avx2.c, float weights in simd_float.c, many tokens in tile_avx2.c. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "simd_x86.h"

DOT32_1(q4_0, 18)
DOT32_1(q4_1, 20)
DOT32_1(q5_0, 22)
DOT32_1(q5_1, 24)
DOT32_1(q8_0, 34)

/* One token at a time: each row streamed once per token. */
#define MM_ROWDOT(NAME, DOT, NBLK)                                                             \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        int nb = a->cols / NBLK;                                                               \
        for (int r = r0; r < r1; r++)                                                          \
            for (int t = 0; t < a->T; t++) out[t * os + r] = DOT(w + (size_t)r * rb, nb, a, t); \
    }

MM_ROWDOT(q4_0, dot1_q4_0, 32)
MM_ROWDOT(q4_1, dot1_q4_1, 32)
MM_ROWDOT(q5_0, dot1_q5_0, 32)
MM_ROWDOT(q5_1, dot1_q5_1, 32)
MM_ROWDOT(q8_0, dot1_q8_0, 32)

#include "tiled.h"

void simd_fill_avx2(isa_table *t) {
    tiled_begin(t);
    small[W_Q4_0] = mm_q4_0;
    small[W_Q4_1] = mm_q4_1;
    small[W_Q5_0] = mm_q5_0;
    small[W_Q5_1] = mm_q5_1;
    small[W_Q8_0] = mm_q8_0;
    simd_k_avx2(small);
    tiled_end(t, &TILE_AVX2);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx2_unused;
#endif
