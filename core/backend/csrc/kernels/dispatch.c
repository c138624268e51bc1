/* Runtime ISA dispatch: which kernel table this CPU can run, best first. The
 * shipped code is never built with -march=native; each ISA's kernels carry
 * their own target attribute and are only called when the CPU has it. */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#define MAX_ISAS 4

static isa_table tables[MAX_ISAS];
static int ntables = -1;
static const isa_table *current;

#if defined(__x86_64__) || defined(_M_X64)
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* libgcc's checks include the OS's XSAVE support for the wide registers. */
static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
}

static int has_avx512(void) {
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#endif

/* simd_x86.h's prefetch of streamed weight groups: non-temporal on AMD
 * family 1Ah (Zen 5), where it was measured faster; T1 elsewhere. */
int chord_prefetch_nta;

#if defined(__x86_64__) || defined(_M_X64)
static int is_zen5_or_later(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_is("amd") || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    return family >= 0x1a;
}
#endif

static void init(void) {
    if (ntables >= 0) return;
#if defined(__x86_64__) || defined(_M_X64)
    chord_prefetch_nta = is_zen5_or_later();
#endif
    int n = 0;
#if defined(__x86_64__) || defined(_M_X64)
    if (has_avx512()) isa_fill_avx512(&tables[n++]);
    if (has_avx2()) isa_fill_avx2(&tables[n++]);
#endif
#if defined(__aarch64__)
    isa_fill_neon(&tables[n++]);
#endif
    isa_fill_portable(&tables[n++]);
    ntables = n;
    current = &tables[0];
}

const isa_table *isa_current(void) {
    init();
    return current;
}

int isa_available(const char **names, int cap) {
    init();
    int n = 0;
    for (int i = 0; i < ntables && n < cap; i++) names[n++] = tables[i].name;
    return n;
}

int isa_select(const char *name) {
    init();
    for (int i = 0; i < ntables; i++)
        if (strcmp(tables[i].name, name) == 0) {
            current = &tables[i];
            return 0;
        }
    return -1;
}
