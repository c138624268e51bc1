/* Running one attention job on the thread pool (see flash.h). */
#ifndef CHORD_FLASH_DRIVER_H
#define CHORD_FLASH_DRIVER_H

#include "flash.h"
#include "pool_api.h"

/* Fills job->q_block, runs every unit with `fn` on up to `threads`
 * threads of `pool` (chord_core._kernels' pool). Returns 0, or -1 when
 * scratch memory cannot be had. */
int flash_run(const chord_pool_api *pool, FlashJob *job, flash_unit_fn fn, int threads);

/* n jobs (a batched decode step: one query row per sequence, each over its
 * own cache) as one pool run. Each job is cut as flash_run cuts it alone
 * on `threads` threads, so its rows come out with the same bits; only the
 * lot's units share the workers. Returns 0, or -1 without memory. */
int flash_run_jobs(const chord_pool_api *pool, FlashJob *jobs, int n, flash_unit_fn fn, int threads);

#endif
