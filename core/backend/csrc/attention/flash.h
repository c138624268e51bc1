/* Flash-style attention over one layer's KV cache: the job every ISA's
 * kernel runs, and the kernels' entry points.
 *
 * A job is cut into units of (kv head, query block, key split). The rows
 * of a unit are the query block's queries times the heads of the kv head's
 * GQA group, so each key/value tile is read once for all of them. A unit
 * walks its keys in tiles (key_tile keys, sized to stay in L1) with an
 * online softmax: only (rows x tile) scores ever exist. */
#ifndef CHORD_FLASH_H
#define CHORD_FLASH_H

#include <stdint.h>

/* Row groups are processed four at a time (the micro-kernels' block). */
#define FLASH_ROW_BLOCK 4

typedef struct {
    const float *q;   /* (T, n_head, dk), already scaled */
    const void *k;    /* (n_kv, cap, dk) float32 or float16 (IEEE binary16 bits) */
    const void *v;    /* (n_kv, cap, dv) same type as k */
    float *out;       /* (T, n_head * dv) */
    int kv_f16;       /* 1: k and v hold float16 */
    int64_t T, n_head, n_kv, group, dk, dv, cap;
    int64_t start, lo, window; /* query i at start + i sees lo <= p <= start + i (and the window) */
    float softcap;    /* > 0: tanh soft-capping of the scores */
    int64_t q_block;  /* queries per unit */
    int64_t key_tile; /* keys per tile, a multiple of 4 */
} FlashJob;

typedef struct {
    int64_t kv_head;
    int64_t q0, q1;     /* queries [q0, q1) */
    int64_t k0, k1;     /* the key split: positions [k0, k1) */
    float *partial;     /* NULL: write normalized rows to out; else rows x (2 + dv): m, l, acc */
} FlashUnit;

/* One thread's scratch for units of this job, in floats:
 * scores R x (key_tile + 4) | K tile | V tile | acc R x dv | m R | l R,
 * with R the unit's rows rounded up to whole row blocks. The scores' four
 * spare columns take the tail of the last 4-key block. */
static inline int64_t flash_rows_padded(const FlashJob *job)
{
    int64_t r = job->q_block * job->group;
    return (r + FLASH_ROW_BLOCK - 1) / FLASH_ROW_BLOCK * FLASH_ROW_BLOCK;
}

static inline int64_t flash_score_stride(const FlashJob *job) { return job->key_tile + 4; }

static inline int64_t flash_scratch_floats(const FlashJob *job)
{
    const int64_t R = flash_rows_padded(job);
    return R * flash_score_stride(job) + job->key_tile * (job->dk + job->dv) + R * job->dv + 2 * R;
}

typedef void (*flash_unit_fn)(const FlashJob *job, const FlashUnit *unit, float *scratch);

void flash_unit_portable(const FlashJob *job, const FlashUnit *unit, float *scratch);
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
void flash_unit_avx2(const FlashJob *job, const FlashUnit *unit, float *scratch);
void flash_unit_avx512(const FlashJob *job, const FlashUnit *unit, float *scratch);
#endif

/* Portable float16 -> float32 (exact, subnormals and inf/nan included). */
static inline float flash_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalize */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    union { uint32_t u; float f; } cv = { bits };
    return cv.f;
}

#endif
