/* Plain C loops: the reference every ISA's loops must agree with. */
#include <math.h>

#include "logit_scan.h"

static int always(void) { return 1; }

static float peak_portable(const float *x, size_t n, int *has_nan)
{
    float m = -INFINITY;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        nan |= x[i] != x[i];
        m = x[i] > m ? x[i] : m;
    }
    *has_nan = nan;
    return m;
}

static double exp_sum_portable(const float *x, size_t n, float peak, float inv_t)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        float d = x[i] - peak;
        d *= inv_t;
        s += (double)expf(d);
    }
    return s;
}

static size_t next_above_portable(const float *x, size_t from, size_t n, float above)
{
    for (size_t i = from; i < n; i++)
        if (x[i] > above)
            return i;
    return n;
}

const ScanIsa scan_portable = {"portable", always, peak_portable, exp_sum_portable, next_above_portable};
