/* Scratch memory of attention calls, kept per calling thread between calls. */
#ifndef CHORD_FLASH_SCRATCH_H
#define CHORD_FLASH_SCRATCH_H

#include <stddef.h>

typedef struct {
    float *p;  /* 64-byte aligned, `floats` long */
    int owned; /* 1: a one-off allocation the caller releases */
} FlashScratch;

/* Room for `floats` floats: the calling thread's buffer (grown as needed,
 * freed when the thread exits), or a one-off allocation for a request too
 * big to keep. Returns 0, or -1 without memory. Release with
 * flash_scratch_release when the call is done. */
int flash_scratch_get(FlashScratch *s, size_t floats);
void flash_scratch_release(FlashScratch *s);

#endif
