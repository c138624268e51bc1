/* Plain C loops: the reference every ISA's loops must agree with. */
#include <math.h>

#include "logit_scan.h"

static int always(void) { return 1; }

static double exp_sum_portable(const float *x, size_t n, float peak, float inv_t, int *has_nan)
{
    double s = 0.0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        nan |= x[i] != x[i];
        float d = x[i] - peak;
        d *= inv_t;
        s += (double)expf(d);
    }
    *has_nan = nan;
    return s;
}

static size_t next_above_portable(const float *x, size_t from, size_t n, float above)
{
    for (size_t i = from; i < n; i++)
        if (x[i] > above)
            return i;
    return n;
}

const ScanIsa scan_portable = {"portable", always, exp_sum_portable, next_above_portable};
