/* Persistent worker threads. A job is published by bumping the mailbox of
 * each worker that takes part (only those: a worker never runs a job it was
 * not given, however late it wakes); workers
 * spin on it for a short while (the next call of a decode step usually
 * comes within tens of microseconds, far below a futex wake-up's cost) and
 * then sleep on a condition variable, so an idle process burns no CPU. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS 200000L /* how long an idle worker polls before sleeping */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static atomic_ulong mailbox[POOL_MAX_THREADS]; /* per worker job count, bumped under mu */
static atomic_int done;       /* workers finished with the current job */
static int started;           /* workers created (ids 1..started) */
static atomic_int alive;      /* workers that have read their mailbox */
static pool_task job_fn;
static void *job_ctx;
static int job_nth;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static unsigned long wait_for_job(int id, unsigned long seen) {
    long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        unsigned long g = atomic_load_explicit(&mailbox[id], memory_order_acquire);
        if (g != seen) return g;
        CPU_RELAX();
        if ((i & 255) == 0 && now_ns() - t0 > SPIN_NS) break;
    }
    pthread_mutex_lock(&mu);
    unsigned long g;
    while ((g = atomic_load_explicit(&mailbox[id], memory_order_acquire)) == seen)
        pthread_cond_wait(&wake, &mu);
    pthread_mutex_unlock(&mu);
    return g;
}

static void *worker(void *arg) {
    int id = (int)(long)arg;
    /* nothing bumps a mailbox while its worker is being created */
    unsigned long seen = atomic_load(&mailbox[id]);
    atomic_fetch_add(&alive, 1);
    for (;;) {
        seen = wait_for_job(id, seen);
        /* job_* were written before the mailbox was bumped (release/acquire) */
        job_fn(job_ctx, id, job_nth);
        atomic_fetch_add_explicit(&done, 1, memory_order_release);
    }
    return NULL;
}

/* A forked child inherits none of the workers: start over. */
static void after_fork_child(void) {
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&wake, NULL);
    started = 0;
    atomic_store(&alive, 0);
}

static int ensure_workers(int nth) {
    static int atfork_done;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_done = 1;
    }
    while (started < nth - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        int rc = pthread_create(&th, &attr, worker, (void *)(long)(started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) return -1;
        started++;
        while (atomic_load(&alive) < started) CPU_RELAX(); /* it has read its mailbox */
    }
    return 0;
}

int pool_run(int nth, pool_task fn, void *ctx) {
    if (nth > POOL_MAX_THREADS) nth = POOL_MAX_THREADS;
    int rc = ensure_workers(nth);
    if (nth > started + 1) nth = started + 1;
    if (nth <= 1) {
        fn(ctx, 0, 1);
        return rc;
    }
    pthread_mutex_lock(&mu);
    job_fn = fn;
    job_ctx = ctx;
    job_nth = nth;
    atomic_store_explicit(&done, 0, memory_order_relaxed);
    for (int i = 1; i < nth; i++) atomic_fetch_add_explicit(&mailbox[i], 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&mu);
    fn(ctx, 0, nth);
    for (unsigned i = 1; atomic_load_explicit(&done, memory_order_acquire) < nth - 1; i++) {
        CPU_RELAX();
        if ((i & 1023) == 0) sched_yield();
    }
    return rc;
}
