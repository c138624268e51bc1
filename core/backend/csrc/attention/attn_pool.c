/* The attention thread pool (see attn_pool.h). */
#include "attn_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define POOL_MAX_WORKERS 255

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* a new generation of work */
    pthread_cond_t done;      /* the last worker of a generation finished */
    int n_workers;            /* started */
    uint64_t generation;
    int active;               /* workers taking part in this generation */
    int pending;              /* of those, still running */
    attn_task_fn fn;
    void *ctx;
    int64_t units;
    atomic_llong next;
    /* the generation each worker was started in: work posted after it is
       news to the worker even if the worker had not yet run when posted */
    uint64_t born[POOL_MAX_WORKERS + 1];
} Pool;

static Pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};
/* serializes whole runs: one job at a time owns the workers */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void take_units(attn_task_fn fn, void *ctx, int64_t units, int thread)
{
    for (;;) {
        int64_t u = atomic_fetch_add(&pool.next, 1);
        if (u >= units)
            return;
        fn(ctx, u, thread);
    }
}

static void *worker_main(void *arg)
{
    const int index = (int)(intptr_t)arg; /* 1.. (0 is the caller) */
    pthread_mutex_lock(&pool.lock);
    uint64_t seen = pool.born[index];
    for (;;) {
        while (pool.generation == seen)
            pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        if (index > pool.active)
            continue;
        attn_task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int64_t units = pool.units;
        pthread_mutex_unlock(&pool.lock);
        take_units(fn, ctx, units, index);
        pthread_mutex_lock(&pool.lock);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: start again from none. */
static void reset_in_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pthread_mutex_init(&run_lock, NULL);
    pool.n_workers = 0;
    pool.active = 0;
    pool.pending = 0;
}

static void install_atfork(void) { pthread_atfork(NULL, NULL, reset_in_child); }

/* Start workers up to `want`; returns how many exist (fewer if the system refuses). */
static int ensure_workers(int want)
{
    while (pool.n_workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pool.born[pool.n_workers + 1] = pool.generation;
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
    if (helpers <= 0) {
        for (int64_t u = 0; u < units; u++)
            fn(ctx, u, 0);
        return;
    }
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&run_lock);
    pthread_mutex_lock(&pool.lock);
    helpers = ensure_workers(helpers) < helpers ? pool.n_workers : helpers;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.units = units;
    atomic_store(&pool.next, 0);
    pool.active = helpers;
    pool.pending = helpers;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    take_units(fn, ctx, units, 0);

    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&run_lock);
}
