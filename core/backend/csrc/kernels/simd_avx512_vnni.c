/* simd_avx512.c's one-token kernels built with AVX-512 VNNI: vpdpbusd for
 * the 32-element types' products, vpdpwssd for the k-quants' scaled sums. */
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#endif

#define SIMD_VNNI 1
#include "simd_avx512.h"
#include "simd32_avx512.h"
#include "simdk_avx512.h"
#include "rtile_avx512.h"
#include "rtile_packed_avx512.h"

void simd_small_avx512_vnni(mm_fn *small, mm_fn *packed) {
    fill32(small);
    fillk(small);
    fill_rtile(small);
    fill_rtile_packed(packed);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx512_vnni_unused;
#endif
