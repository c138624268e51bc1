/* The portable build of generic.h: baseline flags of the target (SSE2 on
 * x86-64; on arm64 NEON is baseline, so this is auto-vectorized NEON). */
#include "kernels.h"

#define KFN(name) name##_portable
#include "generic.h"
#include "tiled.h"

void isa_fill_portable(isa_table *t) {
    t->name = "portable";
    fill_generic_portable(t);
    tiled_begin(t);
    tiled_end(t, &TILE_PORTABLE);
}

#if defined(__aarch64__)
void isa_fill_neon(isa_table *t) {
    isa_fill_portable(t);
    t->name = "neon";
}
#endif
