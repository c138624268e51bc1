/* Persistent worker threads claiming chunks of a job from one atomic cursor.
 *
 * The cursor holds the job's sequence number (high 32 bits) and the next
 * unclaimed chunk (low 32 bits); a chunk is claimed by a compare-and-swap
 * that only succeeds while the cursor still names that job. Publishing a
 * job first closes the cursor, then writes the job, then opens it, so a
 * worker waking late from an earlier job can never claim a chunk of the new
 * one with the old job's function, nor of a finished job. The caller waits
 * for chunks done, not for workers: a worker the OS has not scheduled yet
 * just finds nothing left.
 *
 * Idle workers poll for a short while (the next call of a decode step
 * usually comes within tens of microseconds, below a futex wake-up's cost),
 * then sleep on a condition variable, so an idle process burns no CPU. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS 200000L  /* how long an idle worker polls before sleeping */
#define CLOSED 0xFFFFFFFFu

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t cursor = CLOSED;
static atomic_uint published; /* sequence number of the latest job */
static atomic_int done;       /* chunks of the current job finished */
static _Atomic(pool_task) job_fn;
static _Atomic(void *) job_ctx;
static atomic_int job_nchunks, job_nthreads;
static int started;           /* workers created (ids 1..started) */

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claims and runs chunks of job `seq` until none is left. */
static void run_chunks(unsigned seq) {
    pool_task fn = atomic_load_explicit(&job_fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&job_ctx, memory_order_relaxed);
    uint32_t n = (uint32_t)atomic_load_explicit(&job_nchunks, memory_order_relaxed);
    uint64_t c = atomic_load_explicit(&cursor, memory_order_acquire);
    for (;;) {
        if ((unsigned)(c >> 32) != seq || (uint32_t)c >= n) return;
        if (!atomic_compare_exchange_weak_explicit(&cursor, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        fn(ctx, (int)(uint32_t)c);
        atomic_fetch_add_explicit(&done, 1, memory_order_release);
        c = atomic_load_explicit(&cursor, memory_order_acquire);
    }
}

static unsigned wait_for_job(unsigned seen) {
    long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        unsigned s = atomic_load_explicit(&published, memory_order_acquire);
        if (s != seen) return s;
        CPU_RELAX();
        if ((i & 255) == 0 && now_ns() - t0 > SPIN_NS) break;
    }
    pthread_mutex_lock(&mu);
    unsigned s;
    while ((s = atomic_load_explicit(&published, memory_order_acquire)) == seen)
        pthread_cond_wait(&wake, &mu);
    pthread_mutex_unlock(&mu);
    return s;
}

static _Thread_local int thread_index; /* 0 outside the workers */

int pool_thread(void) { return thread_index; }

static void *worker(void *arg) {
    int id = (int)(long)arg;
    thread_index = id;
    unsigned seen = atomic_load(&published);
    for (;;) {
        seen = wait_for_job(seen);
        if (id < atomic_load_explicit(&job_nthreads, memory_order_relaxed)) run_chunks(seen);
    }
    return NULL;
}

/* A forked child inherits none of the workers: start over. */
static void after_fork_child(void) {
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&wake, NULL);
    started = 0;
}

static int ensure_workers(int n) {
    static int atfork_done;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_done = 1;
    }
    while (started < n) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        int rc = pthread_create(&th, &attr, worker, (void *)(long)(started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) return -1;
        started++;
    }
    return 0;
}

int pool_run(int nthreads, int nchunks, pool_task fn, void *ctx) {
    if (nchunks <= 0) return 0;
    if (nthreads > POOL_MAX_THREADS) nthreads = POOL_MAX_THREADS;
    if (nthreads > nchunks) nthreads = nchunks;
    if (nthreads <= 1) {
        for (int c = 0; c < nchunks; c++) fn(ctx, c);
        return 0;
    }
    int rc = ensure_workers(nthreads - 1);
    unsigned seq = atomic_load(&published) + 1;
    atomic_store(&cursor, ((uint64_t)seq << 32) | CLOSED);
    atomic_store_explicit(&job_fn, fn, memory_order_relaxed);
    atomic_store_explicit(&job_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&job_nchunks, nchunks, memory_order_relaxed);
    atomic_store_explicit(&job_nthreads, nthreads, memory_order_relaxed);
    atomic_store_explicit(&done, 0, memory_order_relaxed);
    atomic_store_explicit(&cursor, (uint64_t)seq << 32, memory_order_release);
    pthread_mutex_lock(&mu);
    atomic_store_explicit(&published, seq, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&mu);
    run_chunks(seq);
    for (unsigned i = 1; atomic_load_explicit(&done, memory_order_acquire) < nchunks; i++) {
        CPU_RELAX();
        if ((i & 1023) == 0) sched_yield();
    }
    return rc;
}
