/* Cutting an attention job into units, running them on the pool, and
 * merging key splits. */
#include "flash_driver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <limits.h>

#include "flash_scratch.h"

/* A unit's rows (queries x GQA heads) share every key/value tile, and its
 * accumulators (rows x dv floats) and tile (keys x (dk + dv)) should stay
 * near L1: these budgets, in floats, pick both sizes from the head size. */
#define FLASH_ACC_FLOATS 4096
#define FLASH_TILE_FLOATS 8192
/* A key split is worth its merge only beyond this many keys. */
#define FLASH_MIN_SPLIT_KEYS 256
/* Waking a sleeping worker costs tens of microseconds: a job of fewer
 * multiply-adds than this (about that long on one core) runs on the caller.
 * Units run on chord_core._kernels' pool (pool_api.h). */
#define FLASH_MIN_PARALLEL_FMAS (1 << 20)
/* Several decode rows' jobs (flash_run_jobs) run right after a product,
 * while the pool's workers still poll: no wake-up to pay for. */
#ifndef FLASH_MIN_PARALLEL_FMAS_JOBS
#define FLASH_MIN_PARALLEL_FMAS_JOBS (1 << 16)
#endif

typedef struct {
    const FlashJob *job;
    flash_unit_fn fn;
    int64_t n_qblocks, n_splits, split_keys;
    float *scratch;        /* threads x scratch_stride */
    int64_t scratch_stride;
    float *partials;       /* units x rows x (2 + dv), or NULL */
    int threads;           /* the threads the job alone runs on */
} Plan;

static void plan_unit(const Plan *pl, int64_t index, FlashUnit *u)
{
    const FlashJob *job = pl->job;
    /* the last query blocks see the most keys: hand them out first */
    int64_t split = index % pl->n_splits;
    int64_t rest = index / pl->n_splits;
    u->kv_head = rest % job->n_kv;
    int64_t qb = pl->n_qblocks - 1 - rest / job->n_kv;
    u->q0 = qb * job->q_block;
    u->q1 = u->q0 + job->q_block < job->T ? u->q0 + job->q_block : job->T;
    u->k0 = job->lo + split * pl->split_keys;
    u->k1 = split == pl->n_splits - 1 ? job->start + job->T : u->k0 + pl->split_keys;
    u->partial = NULL;
    if (pl->partials)
        u->partial = pl->partials + index * job->q_block * job->group * (2 + job->dv);
}

static void run_unit(void *ctx, int index, int thread)
{
    const Plan *pl = ctx;
    FlashUnit u;
    plan_unit(pl, index, &u);
    pl->fn(pl->job, &u, pl->scratch + thread * pl->scratch_stride);
}

/* Combine the splits' (m, l, acc) of every row into out. */
static void merge_splits(const Plan *pl)
{
    const FlashJob *job = pl->job;
    const int64_t g = job->group, dv = job->dv, row_floats = 2 + dv;
    const int64_t unit_floats = job->q_block * g * row_floats;
    for (int64_t rest = 0; rest < pl->n_qblocks * job->n_kv; rest++) {
        FlashUnit u;
        plan_unit(pl, rest * pl->n_splits, &u);
        for (int64_t qi = u.q0; qi < u.q1; qi++) {
            for (int64_t j = 0; j < g; j++) {
                const int64_t r = (qi - u.q0) * g + j;
                const float *first = pl->partials + rest * pl->n_splits * unit_floats + r * row_floats;
                float M = -INFINITY;
                for (int64_t s = 0; s < pl->n_splits; s++)
                    M = fmaxf(M, first[s * unit_floats]);
                float *dst = job->out + qi * job->n_head * dv + (u.kv_head * g + j) * dv;
                memset(dst, 0, (size_t)dv * sizeof(float));
                float L = 0.0f;
                for (int64_t s = 0; s < pl->n_splits; s++) {
                    const float *p = first + s * unit_floats;
                    if (p[0] == -INFINITY)
                        continue; /* this split held none of the row's keys */
                    float w = expf(p[0] - M);
                    L += w * p[1];
                    for (int64_t d = 0; d < dv; d++)
                        dst[d] += w * p[2 + d];
                }
                const float inv = 1.0f / L;
                for (int64_t d = 0; d < dv; d++)
                    dst[d] *= inv;
            }
        }
    }
}

/* Fills job->q_block and job->key_tile and the plan's split of the keys, as
 * one job on `threads` threads cuts them; returns the plan's units, or -1. */
static int64_t plan_job(Plan *pl, FlashJob *job, flash_unit_fn fn, int threads)
{
    int64_t rows = FLASH_ACC_FLOATS / job->dv;
    rows = rows < 8 ? 8 : rows > 32 ? 32 : rows;
    job->q_block = rows / job->group > 0 ? rows / job->group : 1;
    if (job->q_block > job->T)
        job->q_block = job->T;
    int64_t tile = FLASH_TILE_FLOATS / job->dk / 4 * 4;
    job->key_tile = tile < 16 ? 16 : tile > 128 ? 128 : tile;
    memset(pl, 0, sizeof *pl);
    pl->job = job;
    pl->fn = fn;
    pl->n_qblocks = (job->T + job->q_block - 1) / job->q_block;
    const int64_t base_units = pl->n_qblocks * job->n_kv;
    const int64_t n_keys = job->start + job->T - job->lo;
    const double fmas = (double)n_keys * job->T * job->n_head * (job->dk + job->dv);
    if (fmas < FLASH_MIN_PARALLEL_FMAS)
        threads = 1;
    pl->n_splits = 1;
    if (base_units < threads && n_keys >= 2 * FLASH_MIN_SPLIT_KEYS) {
        /* few units (decode): split the keys so every thread has work */
        int64_t want = (2 * threads + base_units - 1) / base_units;
        int64_t most = n_keys / FLASH_MIN_SPLIT_KEYS;
        pl->n_splits = want < most ? want : most;
    }
    int64_t tiles = (n_keys + job->key_tile - 1) / job->key_tile;
    pl->split_keys = (tiles + pl->n_splits - 1) / pl->n_splits * job->key_tile;
    pl->n_splits = (n_keys + pl->split_keys - 1) / pl->split_keys;
    const int64_t units = base_units * pl->n_splits;
    if (units > INT_MAX) /* the pool counts units in int: 2^31 of them is no real job */
        return -1;
    pl->threads = threads < units ? threads : (int)units;
    pl->scratch_stride = (flash_scratch_floats(job) + 15) & ~(int64_t)15; /* 64-byte rows */
    return units;
}

int flash_run(const chord_pool_api *pool, FlashJob *job, flash_unit_fn fn, int threads)
{
    if (job->T == 0)
        return 0;
    Plan pl;
    const int64_t units = plan_job(&pl, job, fn, threads);
    if (units < 0)
        return -1;
    const size_t scratch_floats = (size_t)(pl.threads * pl.scratch_stride);
    const size_t partial_floats =
        pl.n_splits > 1 ? (size_t)(units * job->q_block * job->group * (2 + job->dv)) : 0;
    FlashScratch mem;
    if (flash_scratch_get(&mem, scratch_floats + partial_floats) != 0)
        return -1;
    pl.scratch = mem.p;
    if (partial_floats)
        pl.partials = mem.p + scratch_floats;
    pool->run(pl.threads, (int)units, run_unit, &pl);
    if (pl.partials)
        merge_splits(&pl);
    flash_scratch_release(&mem);
    return 0;
}

/* Several jobs as one pool run: unit `index` of the lot is unit
 * index - first[j] of plan j. */
typedef struct {
    Plan *plans;
    const int64_t *first; /* n + 1 prefix sums of the plans' units */
    int n;
} PlanSet;

static void run_set_unit(void *ctx, int index, int thread)
{
    const PlanSet *set = ctx;
    int lo = 0, hi = set->n - 1;
    while (lo < hi) { /* the last plan whose first unit is <= index */
        int mid = (lo + hi + 1) / 2;
        if (set->first[mid] <= index)
            lo = mid;
        else
            hi = mid - 1;
    }
    Plan *pl = &set->plans[lo];
    run_unit(pl, (int)(index - set->first[lo]), thread);
}

int flash_run_jobs(const chord_pool_api *pool, FlashJob *jobs, int n, flash_unit_fn fn, int threads)
{
    Plan *plans = calloc((size_t)n, sizeof *plans);
    int64_t *first = malloc((size_t)(n + 1) * sizeof *first);
    FlashScratch mem = {NULL, 0};
    int rc = -1;
    if (!plans || !first)
        goto done;
    int64_t units = 0, partial_floats = 0, stride = 0;
    double fmas = 0;
    for (int j = 0; j < n; j++) {
        first[j] = units;
        const int64_t u = plan_job(&plans[j], &jobs[j], fn, threads);
        if (u < 0)
            goto done;
        units += u;
        if (plans[j].n_splits > 1)
            partial_floats += u * jobs[j].q_block * jobs[j].group * (2 + jobs[j].dv);
        stride = plans[j].scratch_stride > stride ? plans[j].scratch_stride : stride;
        fmas += (double)(jobs[j].start + jobs[j].T - jobs[j].lo) * jobs[j].T * jobs[j].n_head *
                (jobs[j].dk + jobs[j].dv);
    }
    first[n] = units;
    if (units > INT_MAX)
        goto done;
    /* each job alone would stay on one thread below the gate; together they
     * may not (the split of each job's keys is its own plan's, so its rows
     * keep the bits a call of its own gives) */
    int n_threads = fmas < FLASH_MIN_PARALLEL_FMAS_JOBS ? 1 : threads;
    n_threads = n_threads < units ? n_threads : (int)units;
    if (n_threads < 1)
        n_threads = 1;
    if (flash_scratch_get(&mem, (size_t)(n_threads * stride + partial_floats)) != 0)
        goto done;
    float *partials = mem.p + n_threads * stride;
    for (int64_t j = 0, at = 0; j < n; j++) {
        plans[j].scratch = mem.p;
        plans[j].scratch_stride = stride;
        if (plans[j].n_splits > 1) {
            plans[j].partials = partials + at;
            at += (first[j + 1] - first[j]) * jobs[j].q_block * jobs[j].group * (2 + jobs[j].dv);
        }
    }
    PlanSet set = {.plans = plans, .first = first, .n = n};
    if (units > 0)
        pool->run(n_threads, (int)units, run_set_unit, &set);
    for (int j = 0; j < n; j++)
        if (plans[j].partials)
            merge_splits(&plans[j]);
    rc = 0;
done:
    flash_scratch_release(&mem);
    free(first);
    free(plans);
    return rc;
}
