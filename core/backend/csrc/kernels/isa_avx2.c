/* The AVX2 + FMA + F16C table: generic.h compiled for 256-bit registers,
 * with the hot types replaced by hand-written kernels (simd_avx2.c). */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#define KFN(name) name##_avx2
#include "generic.h"

void isa_fill_avx2(isa_table *t) {
    t->name = "avx2";
    fill_generic_avx2(t);
    simd_fill_avx2(t);
    simd_fill_float_avx2(t);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int isa_avx2_unused;
#endif
