/* chord_core._attention: flash-style attention over one layer's KV cache.
 *
 * attend(q, k, v, out, start, lo, end, window, softcap, threads) checks its
 * arguments (one-line ValueErrors naming the argument), releases the GIL
 * and runs the kernel of the ISA picked at import (CHORD_ISA, else the best
 * this CPU has; set_isa switches it, for tests). Arrays come in through the
 * buffer protocol, so the extension needs no NumPy headers to build. Units
 * run on chord_core._kernels' thread pool (imported as a capsule).
 * attend_rows (attend_rows.c) is a batched decode step's attention: one
 * row per sequence, each over its own cache, in one call. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <string.h>

#include "attend_rows.h"
#include "flash_driver.h"
#include "isa_select.h"
#include "py_args.h"

/* chord_core._kernels' thread pool (pool_api.h), taken at import. */
static const chord_pool_api *pool;

static PyObject *attend(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"q", "k", "v", "out", "start", "lo", "end", "window", "softcap", "threads", NULL};
    PyObject *oq, *ok, *ov, *oout;
    Py_ssize_t start, lo, end, window, threads;
    double softcap;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOnnnndn", kwlist, &oq, &ok, &ov, &oout, &start, &lo,
                                     &end, &window, &softcap, &threads))
        return NULL;
    Arg a[4] = {{"q"}, {"k"}, {"v"}, {"out"}};
    if (args_get("attend", oq, &a[0], 0, 3, "f", 0) || args_get("attend", ok, &a[1], 0, 3, "fe", 0) ||
        args_get("attend", ov, &a[2], 0, 3, "fe", 0) || args_get("attend", oout, &a[3], 1, 2, "f", 0)) {
        args_release(a, 4);
        return NULL;
    }
    const Py_ssize_t *qs = a[0].view.shape, *ks = a[1].view.shape, *vs = a[2].view.shape, *os = a[3].view.shape;
    const char *err = NULL;
    if (args_element_type(&a[1].view) != args_element_type(&a[2].view))
        err = "k and v must have the same dtype";
    else if (ks[0] < 1 || vs[0] != ks[0] || vs[1] != ks[1])
        err = "k and v must be (n_head_kv, capacity, hd) with the same n_head_kv and capacity";
    else if (qs[1] < 1 || qs[1] % ks[0] != 0)
        err = "q's n_head must be a positive multiple of k's n_head_kv";
    else if (qs[2] != ks[2] || qs[2] < 1 || vs[2] < 1)
        err = "q's head size must equal k's (and be at least 1)";
    else if (os[0] != qs[0] || os[1] != qs[1] * vs[2])
        err = "out must be (T, n_head * hd_v)";
    else if (lo < 0 || lo > start || end != start + qs[0] || end > ks[1])
        err = "positions must satisfy 0 <= lo <= start, end == start + T <= capacity";
    else if (window < 0)
        err = "window must be >= 0";
    else if (!(softcap >= 0.0) || isinf(softcap))
        err = "softcap must be a finite number >= 0";
    else if (threads < 1)
        err = "threads must be >= 1";
    if (err) {
        /* PyErr_Format has no %g: format the line here */
        char line[512];
        snprintf(line, sizeof line,
                 "attend: %s (q %zdx%zdx%zd, k %zdx%zdx%zd, v %zdx%zdx%zd, out %zdx%zd, start %zd, lo %zd, "
                 "end %zd, window %zd, softcap %g, threads %zd)",
                 err, qs[0], qs[1], qs[2], ks[0], ks[1], ks[2], vs[0], vs[1], vs[2], os[0], os[1], start, lo,
                 end, window, softcap, threads);
        PyErr_SetString(PyExc_ValueError, line);
        args_release(a, 4);
        return NULL;
    }
    FlashJob job = {
        .q = a[0].view.buf, .k = a[1].view.buf, .v = a[2].view.buf, .out = a[3].view.buf,
        .kv_f16 = args_element_type(&a[1].view) == 'e',
        .T = qs[0], .n_head = qs[1], .n_kv = ks[0], .group = qs[1] / ks[0], .dk = qs[2], .dv = vs[2],
        .cap = ks[1], .start = start, .lo = lo, .window = window, .softcap = (float)softcap,
    };
    flash_unit_fn fn = isa_current()->unit;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = flash_run(pool, &job, fn, threads > 1024 ? 1024 : (int)threads);
    Py_END_ALLOW_THREADS
    args_release(a, 4);
    if (rc != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_attend_rows(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return attend_rows(pool, args, kwargs);
}

static PyObject *py_isa(PyObject *self, PyObject *unused) { return PyUnicode_FromString(isa_current()->name); }

static PyObject *py_isas(PyObject *self, PyObject *unused)
{
    const IsaEntry *list[ISA_COUNT];
    int n = isa_supported(list);
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) {
        PyObject *s = PyUnicode_FromString(list[i]->name);
        if (!s) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

static PyObject *py_set_isa(PyObject *self, PyObject *name)
{
    const char *s = PyUnicode_AsUTF8(name);
    if (!s)
        return NULL;
    char why[256];
    if (isa_select(s, why, sizeof why) != 0) {
        PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"attend", (PyCFunction)(void (*)(void))attend, METH_VARARGS | METH_KEYWORDS,
     "attend(q, k, v, out, start, lo, end, window, softcap, threads): causal GQA attention of q (T, n_head, hd_k,\n"
     "float32, already scaled) over keys lo..end-1 of one layer's cache k (n_head_kv, cap, hd_k), v (n_head_kv,\n"
     "cap, hd_v) (float32 or float16) into out (T, n_head*hd_v) float32. Query i is at start+i; window > 0 keeps\n"
     "keys with (start+i) - p < window; softcap > 0 soft-caps the scores."},
    {"attend_rows", (PyCFunction)(void (*)(void))py_attend_rows, METH_VARARGS | METH_KEYWORDS, ATTEND_ROWS_DOC},
    {"isa", py_isa, METH_NOARGS, "The instruction set the kernel runs on now."},
    {"isas", py_isas, METH_NOARGS, "The instruction sets this CPU can run, best first."},
    {"set_isa", py_set_isa, METH_O, "Run on the named instruction set (ValueError if this CPU cannot)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "chord_core._attention",
    "Flash-style attention over the KV cache, with runtime ISA dispatch.", -1, methods,
};

PyMODINIT_FUNC PyInit__attention(void)
{
    char why[256];
    if (isa_init_from_env(why, sizeof why) != 0) {
        PyErr_SetString(PyExc_ImportError, why);
        return NULL;
    }
    /* after CHORD_ISA's check, so that a bad name fails with this module's line */
    PyObject *kernels = PyImport_ImportModule("chord_core._kernels"); /* PyCapsule_Import imports no submodule */
    if (!kernels)
        return NULL;
    Py_DECREF(kernels);
    pool = PyCapsule_Import(CHORD_POOL_CAPSULE, 0);
    if (!pool)
        return NULL;
    if (pool->version != CHORD_POOL_API_VERSION) {
        PyErr_Format(PyExc_ImportError, "chord_core._attention: chord_core._kernels' pool is version %d, expected %d "
                     "(rebuild both: pip install -e .)", pool->version, CHORD_POOL_API_VERSION);
        return NULL;
    }
    return PyModule_Create(&module);
}
