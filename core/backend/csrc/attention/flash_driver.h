/* Running one attention job on the thread pool (see flash.h). */
#ifndef CHORD_FLASH_DRIVER_H
#define CHORD_FLASH_DRIVER_H

#include "flash.h"
#include "pool_api.h"

/* Fills job->q_block, runs every unit with `fn` on up to `threads`
 * threads of `pool` (chord_core._kernels' pool). Returns 0, or -1 when
 * scratch memory cannot be had. */
int flash_run(const chord_pool_api *pool, FlashJob *job, flash_unit_fn fn, int threads);

#endif
