/* chord_core._sampling: the sampler's pass over a token's logits
 * (logit_scan.h), run with the GIL released so that several streams'
 * samplers scan at once. core/logit_scan.py calls it and falls back to its
 * NumPy reference for what this leaves out (NaN or infinite peaks). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "logit_scan.h"

static const char SCAN_DOC[] =
    "scan(logits, inv_t, ids, vals) -> (peak, log_total) or None\n"
    "logits: float32 1-D; ids (int64) and vals (float32) of one length k, 1 <= k <= len(logits), are filled\n"
    "with the k best tokens, higher logit first, equal logits by lower id. peak is the highest logit and\n"
    "log_total = log(sum(exp((logits - peak) * inv_t))), each difference and product in float32. None, with\n"
    "ids and vals unspecified, when a logit is NaN or the peak is infinite.";

/* 'f' or 'q'/'l' of the given size, ignoring a native byte-order prefix */
static int is_format(const Py_buffer *b, const char *codes, Py_ssize_t size)
{
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    return f[0] && !f[1] && strchr(codes, f[0]) && b->itemsize == size;
}

static int get_vector(PyObject *obj, Py_buffer *view, int writable, const char *codes, Py_ssize_t size,
                      const char *name, const char *kind)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "scan: %s must be a %sC-contiguous 1-D %s array, got %.80s", name,
                     writable ? "writable " : "", kind, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (view->ndim != 1 || !is_format(view, codes, size)) {
        PyErr_Format(PyExc_ValueError, "scan: %s must be a 1-D %s array (format %s, %d dims)", name, kind,
                     view->format ? view->format : "B", view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *py_scan(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o_logits, *o_ids, *o_vals;
    double inv_t;
    if (!PyArg_ParseTuple(args, "OdOO:scan", &o_logits, &inv_t, &o_ids, &o_vals))
        return NULL;
    if (!(inv_t > 0.0) || !isfinite((float)inv_t))
        return PyErr_Format(PyExc_ValueError, "scan: inv_t must be a positive finite float32, got %g", inv_t);
    Py_buffer logits, ids, vals;
    if (get_vector(o_logits, &logits, 0, "f", 4, "logits", "float32") != 0)
        return NULL;
    if (get_vector(o_ids, &ids, 1, "ql", 8, "ids", "int64") != 0) {
        PyBuffer_Release(&logits);
        return NULL;
    }
    if (get_vector(o_vals, &vals, 1, "f", 4, "vals", "float32") != 0) {
        PyBuffer_Release(&ids);
        PyBuffer_Release(&logits);
        return NULL;
    }
    size_t n = (size_t)logits.shape[0], k = (size_t)ids.shape[0];
    PyObject *result = NULL;
    if (k < 1 || k > n || (size_t)vals.shape[0] != k) {
        PyErr_Format(PyExc_ValueError, "scan: ids and vals need one length k with 1 <= k <= %zd logits, got %zd and %zd",
                     (Py_ssize_t)n, ids.shape[0], vals.shape[0]);
        goto done;
    }
    const ScanIsa *isa = scan_isa();
    int has_nan = 0;
    float peak;
    double total = 0.0;
    Py_BEGIN_ALLOW_THREADS
    top_n(isa, logits.buf, n, k, ids.buf, vals.buf);
    peak = ((float *)vals.buf)[0]; /* the best, unless a NaN confused the ranking (found below) */
    if (isfinite(peak))
        total = isa->exp_sum(logits.buf, n, peak, (float)inv_t, &has_nan);
    Py_END_ALLOW_THREADS
    if (has_nan || !isfinite(peak)) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    result = Py_BuildValue("(dd)", (double)peak, log(total));
done:
    PyBuffer_Release(&vals);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&logits);
    return result;
}

static PyObject *py_isa(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    return PyUnicode_FromString(scan_isa()->name);
}

static PyObject *py_isas(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    const char *names[3];
    int n = scan_supported(names);
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++)
        PyTuple_SET_ITEM(t, i, PyUnicode_FromString(names[i]));
    return t;
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "set_isa: name must be a str");
    const char *name = PyUnicode_AsUTF8(arg);
    char why[160];
    if (!name)
        return NULL;
    if (scan_select(name, why, sizeof why) != 0) {
        PyErr_Format(PyExc_ValueError, "set_isa: %s", why);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scan", py_scan, METH_VARARGS, SCAN_DOC},
    {"isa", py_isa, METH_NOARGS, "The instruction set the scan runs on now."},
    {"isas", py_isas, METH_NOARGS, "The instruction sets this CPU can run, best first."},
    {"set_isa", py_set_isa, METH_O, "Run on the named instruction set (ValueError if this CPU cannot)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "chord_core._sampling",
    "The sampler's scan of a token's logits, with runtime ISA dispatch.", -1, methods,
};

PyMODINIT_FUNC PyInit__sampling(void)
{
    const char *forced = getenv("CHORD_ISA");
    char why[160];
    if (forced && forced[0] && scan_select(forced, why, sizeof why) != 0) {
        PyErr_Format(PyExc_ImportError, "CHORD_ISA=%.40s: %s", forced, why);
        return NULL;
    }
    return PyModule_Create(&module);
}
