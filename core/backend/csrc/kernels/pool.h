/* A persistent thread pool: workers are created once and reused by every
 * call (a decode step makes ~100 calls; spawning threads per call would cost
 * more than the work). */
#ifndef CHORD_POOL_H
#define CHORD_POOL_H

#define POOL_MAX_THREADS 256

/* fn(ctx, ith, nth) runs once for each ith in [0, nth): ith 0 on the calling
 * thread, the rest on pool workers. Returns when all have finished. Calls
 * are serialized by the caller (module.c holds its compute lock). Returns 0,
 * or -1 when a worker could not be started (then fn ran with fewer threads:
 * nth is what it was told). */
typedef void (*pool_task)(void *ctx, int ith, int nth);
int pool_run(int nth, pool_task fn, void *ctx);

#endif
