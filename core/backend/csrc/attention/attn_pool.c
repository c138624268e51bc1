/* The attention thread pool (see attn_pool.h).
 *
 * The caller never waits for a worker to wake: it takes units itself from
 * the same counter, and a job is over when all its units are done, not
 * when every worker has reported. A worker that wakes late finds the units
 * gone (or a newer job: the counter carries the job's number, so a late
 * worker can never claim a unit of a job it did not read) and sleeps again.
 * On a busy machine a decode step thus costs one futex wake at most, never
 * a scheduler time slice. */
#include "attn_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define POOL_MAX_WORKERS 255
#define UNIT_BITS 32

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* a new job */
    int n_workers;         /* started */
    uint32_t job;          /* the current job's number */
    int active;            /* workers 1..active take part in it */
    attn_task_fn fn;
    void *ctx;
    int64_t units;
    _Atomic uint64_t ticket;    /* job << UNIT_BITS | next unit */
    _Atomic int64_t units_done; /* of the current job */
    /* the job before the one each worker was started for: that one is news
       to the worker even though the worker first runs after it was posted */
    uint32_t born[POOL_MAX_WORKERS + 1];
} Pool;

static Pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};
/* serializes whole jobs: one at a time owns the workers */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Claim and run units of job `job` until none are left or a newer job began. */
static void take_units(uint32_t job, attn_task_fn fn, void *ctx, int64_t units, int thread)
{
    uint64_t t = atomic_load(&pool.ticket);
    for (;;) {
        if ((uint32_t)(t >> UNIT_BITS) != job || (int64_t)(t & 0xffffffffu) >= units)
            return;
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, t + 1))
            continue; /* t now holds the fresh value */
        fn(ctx, (int64_t)(t & 0xffffffffu), thread);
        atomic_fetch_add(&pool.units_done, 1);
        t = atomic_load(&pool.ticket);
    }
}

static void *worker_main(void *arg)
{
    const int index = (int)(intptr_t)arg; /* 1.. (0 is the caller) */
    pthread_mutex_lock(&pool.lock);
    uint32_t seen = pool.born[index];
    for (;;) {
        while (pool.job == seen)
            pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.job;
        if (index > pool.active)
            continue;
        attn_task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int64_t units = pool.units;
        pthread_mutex_unlock(&pool.lock);
        take_units(seen, fn, ctx, units, index);
        pthread_mutex_lock(&pool.lock);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: start again from none. */
static void reset_in_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_mutex_init(&run_lock, NULL);
    pool.n_workers = 0;
    pool.active = 0;
}

static void install_atfork(void) { pthread_atfork(NULL, NULL, reset_in_child); }

/* Start workers up to `want` (under pool.lock); returns how many exist. */
static int ensure_workers(int want)
{
    while (pool.n_workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pool.born[pool.n_workers + 1] = pool.job;
        int rc = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)(pool.n_workers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        pool.n_workers++;
    }
    return pool.n_workers;
}

void attn_pool_run(int threads, int64_t units, attn_task_fn fn, void *ctx)
{
    int helpers = threads - 1;
    if (helpers > units - 1)
        helpers = (int)(units - 1);
    if (helpers > POOL_MAX_WORKERS)
        helpers = POOL_MAX_WORKERS;
    if (helpers <= 0 || units >= ((int64_t)1 << UNIT_BITS)) {
        for (int64_t u = 0; u < units; u++)
            fn(ctx, u, 0);
        return;
    }
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&run_lock);
    pthread_mutex_lock(&pool.lock);
    if (ensure_workers(helpers) < helpers)
        helpers = pool.n_workers;
    const uint32_t job = pool.job + 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.units = units;
    pool.active = helpers;
    atomic_store(&pool.units_done, 0);
    atomic_store(&pool.ticket, (uint64_t)job << UNIT_BITS);
    pool.job = job;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    take_units(job, fn, ctx, units, 0);
    /* units claimed by workers may still be running */
    while (atomic_load(&pool.units_done) < units)
        sched_yield();
    pthread_mutex_unlock(&run_lock);
}
