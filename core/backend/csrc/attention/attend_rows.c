/* attend_rows: the attention of a batched decode step (forward_batch) in one
 * call: each sequence's new key and value go into its own cache, then every
 * row's job runs on the pool at once (flash_run_jobs), instead of a call,
 * its checks and a single-threaded job per sequence and layer. */
#include "attend_rows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flash_driver.h"
#include "isa_select.h"
#include "py_args.h"

/* float32 -> IEEE binary16 bits, rounded to nearest even (as NumPy's astype). */
static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf, or nan (kept quiet, top payload bits kept) */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
    if (ax >= 0x477ff000u) /* 65520 and up round to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: a subnormal half (or zero) */
        if (ax <= 0x33000000u) /* up to 2^-25 (a tie that goes to even 0) */
            return (uint16_t)sign;
        const uint32_t exp = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - exp; /* 14..24 */
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        h += rem > half || (rem == half && (h & 1u));
        return (uint16_t)(sign | h);
    }
    uint32_t h = (ax >> 13) - (112u << 10); /* exponent rebiased 127 -> 15 */
    const uint32_t rem = ax & 0x1fffu;
    h += rem > 0x1000u || (rem == 0x1000u && (h & 1u)); /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}

/* Row `src` (n float32) into a cache row of float32 or float16. */
static void store_row(void *dst, int f16, const float *src, int64_t n)
{
    if (!f16) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = float_to_half(src[i]);
}

/* Fetches sequence `obj`'s B arrays into args (checked as caches). */
static int get_caches(PyObject *obj, const char *name, Arg *args, Py_ssize_t B)
{
    PyObject *seq = PySequence_Fast(obj, "attend_rows: ks and vs must be sequences of arrays");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != B) {
        PyErr_Format(PyExc_ValueError, "attend_rows: %s holds %zd caches for %zd rows", name,
                     PySequence_Fast_GET_SIZE(seq), B);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t b = 0; b < B; b++) {
        args[b].name = name;
        if (args_get("attend_rows", PySequence_Fast_GET_ITEM(seq, b), &args[b], 1, 3, "fe", 0)) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

static int get_starts(PyObject *obj, Py_ssize_t *starts, Py_ssize_t B)
{
    PyObject *seq = PySequence_Fast(obj, "attend_rows: starts must be a sequence of ints");
    if (!seq)
        return -1;
    int rc = 0;
    if (PySequence_Fast_GET_SIZE(seq) != B) {
        PyErr_Format(PyExc_ValueError, "attend_rows: %zd starts for %zd rows", PySequence_Fast_GET_SIZE(seq), B);
        rc = -1;
    }
    for (Py_ssize_t b = 0; rc == 0 && b < B; b++) {
        starts[b] = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, b), PyExc_OverflowError);
        if (starts[b] == -1 && PyErr_Occurred())
            rc = -1;
    }
    Py_DECREF(seq);
    return rc;
}

/* The checks on shapes and positions; NULL if all hold. */
static const char *check(const Arg *a, const Arg *ks, const Arg *vs, const Py_ssize_t *starts, Py_ssize_t B,
                         Py_ssize_t window, double softcap, Py_ssize_t threads)
{
    const Py_ssize_t *qs = a[0].view.shape, *kn = a[1].view.shape, *vn = a[2].view.shape, *os = a[3].view.shape;
    if (B < 1)
        return "there must be at least one row";
    if (kn[0] != B || vn[0] != B || os[0] != B)
        return "q, k_new, v_new and out must have the same number of rows";
    if (kn[1] < 1 || vn[1] != kn[1] || qs[1] < 1 || qs[1] % kn[1] != 0)
        return "q's n_head must be a positive multiple of k_new's n_head_kv (v_new's the same)";
    if (qs[2] < 1 || kn[2] != qs[2] || vn[2] < 1)
        return "q's head size must equal k_new's (and be at least 1)";
    if (os[1] != qs[1] * vn[2])
        return "out must be (rows, n_head * hd_v)";
    const char type = args_element_type(&ks[0].view);
    for (Py_ssize_t b = 0; b < B; b++) {
        const Py_ssize_t *k = ks[b].view.shape, *v = vs[b].view.shape;
        if (args_element_type(&ks[b].view) != type || args_element_type(&vs[b].view) != type)
            return "every cache in ks and vs must have the same dtype";
        if (k[0] != kn[1] || v[0] != kn[1] || k[2] != kn[2] || v[2] != vn[2] || v[1] != k[1])
            return "caches must be (n_head_kv, capacity, hd) as k_new and v_new are, k and v of one capacity";
        if (starts[b] < 0 || starts[b] >= k[1])
            return "every start must satisfy 0 <= start < its cache's capacity";
    }
    if (window < 0)
        return "window must be >= 0";
    if (!(softcap >= 0.0) || isinf(softcap))
        return "softcap must be a finite number >= 0";
    if (threads < 1)
        return "threads must be >= 1";
    return NULL;
}

PyObject *attend_rows(const chord_pool_api *pool, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"q", "k_new", "v_new", "ks", "vs", "out", "starts", "window", "softcap", "threads", NULL};
    PyObject *oq, *okn, *ovn, *oks, *ovs, *oout, *ostarts;
    Py_ssize_t window, threads;
    double softcap;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOndn", kwlist, &oq, &okn, &ovn, &oks, &ovs, &oout,
                                     &ostarts, &window, &softcap, &threads))
        return NULL;
    Arg a[4] = {{"q"}, {"k_new"}, {"v_new"}, {"out"}};
    if (args_get("attend_rows", oq, &a[0], 0, 3, "f", 1) || args_get("attend_rows", okn, &a[1], 0, 3, "f", 1) ||
        args_get("attend_rows", ovn, &a[2], 0, 3, "f", 1) || args_get("attend_rows", oout, &a[3], 1, 2, "f", 0)) {
        args_release(a, 4);
        return NULL;
    }
    const Py_ssize_t B = a[0].view.shape[0];
    Arg *caches = calloc((size_t)(2 * (B > 0 ? B : 1)), sizeof *caches);
    Py_ssize_t *starts = malloc((size_t)(B > 0 ? B : 1) * sizeof *starts);
    FlashJob *jobs = calloc((size_t)(B > 0 ? B : 1), sizeof *jobs);
    PyObject *result = NULL;
    if (!caches || !starts || !jobs) {
        PyErr_NoMemory();
        goto done;
    }
    Arg *ks = caches, *vs = caches + B;
    if (get_caches(oks, "ks", ks, B) || get_caches(ovs, "vs", vs, B) || get_starts(ostarts, starts, B))
        goto done;
    const char *err = check(a, ks, vs, starts, B, window, softcap, threads);
    if (err) {
        PyErr_Format(PyExc_ValueError, "attend_rows: %s", err);
        goto done;
    }
    const Py_ssize_t nh = a[0].view.shape[1], nkv = a[1].view.shape[1], dk = a[0].view.shape[2];
    const Py_ssize_t dv = a[2].view.shape[2];
    const int f16 = args_element_type(&ks[0].view) == 'e';
    const size_t item = f16 ? 2 : 4;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < B; b++) {
        const Py_ssize_t cap = ks[b].view.shape[1], s = starts[b];
        const float *kn = (const float *)((const char *)a[1].view.buf + b * a[1].view.strides[0]);
        const float *vn = (const float *)((const char *)a[2].view.buf + b * a[2].view.strides[0]);
        for (Py_ssize_t h = 0; h < nkv; h++) {
            store_row((char *)ks[b].view.buf + ((h * cap + s) * dk) * item, f16, kn + h * dk, dk);
            store_row((char *)vs[b].view.buf + ((h * cap + s) * dv) * item, f16, vn + h * dv, dv);
        }
        jobs[b] = (FlashJob){
            .q = (const float *)((const char *)a[0].view.buf + b * a[0].view.strides[0]),
            .k = ks[b].view.buf, .v = vs[b].view.buf, .out = (float *)a[3].view.buf + b * nh * dv,
            .kv_f16 = f16, .T = 1, .n_head = nh, .n_kv = nkv, .group = nh / nkv, .dk = dk, .dv = dv, .cap = cap,
            .start = s, .lo = window > 0 && s - window + 1 > 0 ? s - window + 1 : 0, .window = window,
            .softcap = (float)softcap,
        };
    }
    rc = flash_run_jobs(pool, jobs, (int)B, isa_current()->unit, threads > 1024 ? 1024 : (int)threads);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        PyErr_NoMemory();
    else
        result = Py_NewRef(Py_None);
done:
    if (caches)
        args_release(caches, (int)(2 * B));
    args_release(a, 4);
    free(caches);
    free(starts);
    free(jobs);
    return result;
}
