/* A persistent pthread pool for the attention kernel.
 *
 * Workers are started on first need and kept asleep between calls (a
 * decode step makes one call per layer; starting threads per call would
 * cost more than the work). Units are handed out through an atomic
 * counter, so uneven units (causal prefill) balance themselves. */
#ifndef CHORD_ATTN_POOL_H
#define CHORD_ATTN_POOL_H

#include <stdint.h>

typedef void (*attn_task_fn)(void *ctx, int64_t unit, int thread);

/* Run fn(ctx, u, t) for every unit u in [0, units) on up to `threads`
 * threads (the caller is thread 0). Calls from several Python threads are
 * serialized. */
void attn_pool_run(int threads, int64_t units, attn_task_fn fn, void *ctx);

#endif
