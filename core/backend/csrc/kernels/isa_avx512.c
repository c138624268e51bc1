/* The AVX-512 (F, BW, VL, DQ) table: generic.h compiled for 512-bit registers,
 * with the hot types replaced by hand-written kernels (simd_avx512.c). */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif

#define KFN(name) name##_avx512
#include "generic.h"

void isa_fill_avx512(isa_table *t) {
    t->name = "avx512";
    fill_generic_avx512(t);
    simd_fill_avx512(t);
    simd_fill_float_avx512(t);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int isa_avx512_unused;
#endif
