/* Scratch memory of attention calls (see flash_scratch.h). A decode step
 * makes one call per layer, each needing ~70 KB per thread of scores, tiles
 * and accumulators: allocating and freeing that per call cost ~10% of a
 * short call (glibc consolidated its free lists each time). The caller's
 * thread keeps one buffer instead; the pool's workers use slices of it for
 * the call's duration. */
#include "flash_scratch.h"

#include <pthread.h>
#include <stdlib.h>

/* Requests beyond this are allocated for the call alone (a long prefill's
 * key-split partials on many threads), so no thread keeps them. */
#define FLASH_SCRATCH_KEEP_FLOATS ((size_t)8 << 20)

typedef struct {
    float *p;
    size_t floats;
} Kept;

static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static int kept_ok;

static void kept_free(void *k)
{
    free(((Kept *)k)->p);
    free(k);
}

static void kept_init(void) { kept_ok = pthread_key_create(&kept_key, kept_free) == 0; }

static float *aligned_floats(size_t floats)
{
    void *m = NULL;
    return posix_memalign(&m, 64, (floats ? floats : 1) * sizeof(float)) == 0 ? m : NULL;
}

int flash_scratch_get(FlashScratch *s, size_t floats)
{
    pthread_once(&kept_once, kept_init);
    Kept *k = kept_ok ? pthread_getspecific(kept_key) : NULL;
    if (kept_ok && !k && (k = calloc(1, sizeof *k)) != NULL && pthread_setspecific(kept_key, k) != 0) {
        free(k);
        k = NULL;
    }
    if (!k || floats > FLASH_SCRATCH_KEEP_FLOATS) {
        s->p = aligned_floats(floats);
        s->owned = 1;
        return s->p ? 0 : -1;
    }
    if (floats > k->floats) {
        free(k->p);
        k->floats = 0;
        if (!(k->p = aligned_floats(floats)))
            return -1;
        k->floats = floats;
    }
    s->p = k->p;
    s->owned = 0;
    return 0;
}

void flash_scratch_release(FlashScratch *s)
{
    if (s->owned)
        free(s->p);
    s->p = NULL;
    s->owned = 0;
}
