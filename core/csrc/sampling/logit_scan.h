/* One scan of a token's logits for the sampler (core/logit_scan.py holds the
 * NumPy reference this must agree with): the best n tokens, ordered by logit
 * then id, the highest logit, and log(sum over the vocabulary of
 * exp((logit - peak) * inv_t))), in two passes: the best n (whose first is
 * the peak), then the sum. Each ISA supplies the two loops over the whole
 * vocabulary; the bookkeeping of the best n is shared (top_n.c). */
#ifndef CHORD_LOGIT_SCAN_H
#define CHORD_LOGIT_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    int (*supported)(void);
    /* sum of exp((x[i] - peak) * inv_t) in double, each difference and
     * product rounded to float32 as NumPy's are; every x[i] <= peak. Sets
     * *has_nan when any x[i] is NaN (the sum is then meaningless). */
    double (*exp_sum)(const float *x, size_t n, float peak, float inv_t, int *has_nan);
    /* The first i in [from, n) with x[i] > above, else n. */
    size_t (*next_above)(const float *x, size_t from, size_t n, float above);
} ScanIsa;

extern const ScanIsa scan_portable, scan_avx2, scan_avx512;

/* The k best of x[0..n-1] (1 <= k <= n) into ids/vals, best first: higher
 * logit first, equal logits by lower id. */
void top_n(const ScanIsa *isa, const float *x, size_t n, size_t k, int64_t *ids, float *vals);

/* The CPU's best ISA, or CHORD_ISA's; set_isa switches. */
const ScanIsa *scan_isa(void);
/* 0, or -1 with a one-line reason in `why` naming `name`. */
int scan_select(const char *name, char *why, size_t n);
/* The names this CPU runs, best first; returns how many (at most 3). */
int scan_supported(const char **names);

#endif
