/* The engine's one thread pool, shared by the two extensions:
 * chord_core._kernels owns it (kernels/pool.c) and exports this table as
 * the capsule chord_core._kernels._pool_api; chord_core._attention runs its
 * units on it. One set of workers for the whole engine: two pools' workers
 * spinning after their jobs competed for the same cores during a decode
 * step (matmuls and attention alternate there). */
#ifndef CHORD_POOL_API_H
#define CHORD_POOL_API_H

#define CHORD_POOL_CAPSULE "chord_core._kernels._pool_api"
#define CHORD_POOL_API_VERSION 1

/* One unit of a job; `thread` is 0 for the caller, else 1..threads-1, so
 * per-thread scratch can be indexed by it. */
typedef void (*chord_pool_unit)(void *ctx, int unit, int thread);

typedef struct {
    int version;
    /* Runs fn(ctx, u, t) for every u in [0, units) on the caller and up to
     * threads - 1 workers; returns when all are done. Jobs from any thread,
     * and matrix products, run one at a time (the pool's lock). Returns 0, or
     * -1 when workers could not be started (all units still ran). */
    int (*run)(int threads, int units, chord_pool_unit fn, void *ctx);
} chord_pool_api;

#endif
