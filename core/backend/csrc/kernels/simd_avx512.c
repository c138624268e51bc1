/* The AVX-512 (F/BW/VL/DQ) one-token kernels of the quantized types
 * (simd32_avx512.h, simdk_avx512.h) without VNNI, and the table entries of
 * the avx512 path: these kernels, or simd_avx512_vnni.c's build of the same
 * source where the CPU has VNNI, for few tokens; the tile kernels for many. */
#include <stdlib.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif

#define SIMD_VNNI 0
#include "simd_avx512.h"
#include "simd32_avx512.h"
#include "simdk_avx512.h"
#include "tiled.h"

/* CHORD_VNNI=0 (read once, at import) gives this path the kernels of
 * AVX-512 CPUs without VNNI, so that tests cover them on CPUs with it. */
static int use_vnni(void) {
    __builtin_cpu_init();
    const char *e = getenv("CHORD_VNNI");
    return __builtin_cpu_supports("avx512vnni") && !(e && strcmp(e, "0") == 0);
}

void simd_fill_avx512(isa_table *t) {
    tiled_begin(t);
    int vnni = use_vnni();
    if (vnni) {
        simd_small_avx512_vnni(small, t->packed);
    } else {
        fill32(small);
        fillk(small);
    }
    /* without VNNI the AVX2 tile kernels (maddubs) serve */
    tiled_end(t, vnni ? &TILE_AVX512_VNNI : &TILE_AVX2_UNDER_AVX512);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else
typedef int simd_avx512_unused;
#endif
