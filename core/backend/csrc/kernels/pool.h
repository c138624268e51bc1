/* A persistent thread pool: workers are created once and reused by every
 * call (a decode step makes ~100 calls; spawning threads per call would cost
 * more than the work). */
#ifndef CHORD_POOL_H
#define CHORD_POOL_H

#define POOL_MAX_THREADS 256

/* Runs fn(ctx, c) once for every c in [0, nchunks), on the calling thread
 * and up to nthreads - 1 workers, and returns when all chunks are done.
 * Chunks are claimed one at a time from a shared counter, so the caller
 * never waits for a worker that the OS has not scheduled yet: it takes the
 * work itself. Calls must be serialized (module.c holds its compute lock).
 * Returns 0, or -1 when workers could not be started (all chunks still run). */
typedef void (*pool_task)(void *ctx, int chunk);
int pool_run(int nthreads, int nchunks, pool_task fn, void *ctx);

/* Which thread of a job the caller of this is: 0 for the thread that called
 * pool_run (and any thread outside the pool), 1..nthreads-1 for workers. */
int pool_thread(void);

#endif
