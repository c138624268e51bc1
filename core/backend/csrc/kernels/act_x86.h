/* act.c's AVX-512 twin (act_avx512.c), picked by the CPU at run time: the
 * same quants bit for bit, so which one runs never shows in a result. */
#ifndef CHORD_ACT_X86_H
#define CHORD_ACT_X86_H

#include "kernels.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define ACT_X86 1
int act_avx512_usable(void);
void act_quantize_rows_avx512(act_t *a, int t0, int t1);
#endif

/* Token t's quants into act_t.qt (act.c). */
void act_tile_copy(act_t *a, int t);

#endif
