/* chord_core._kernels: matrix products on GGUF quantized blocks.
 *
 * Python-facing layer: argument checks (one-line errors), the GIL released
 * around the work, and the split of output rows over the thread pool. The
 * arithmetic lives in generic.h / simd_*.c behind the ISA table. */
#include <pthread.h>
#include <stdlib.h>

#include "buffers.h"
#include "kernels.h"
#include "pool.h"
#include "pool_api.h"
#include "rows_pack.h"

/* One computation at a time: the pool and the activation scratch are shared. */
static pthread_mutex_t compute_lock = PTHREAD_MUTEX_INITIALIZER;
static void *scratch;
static size_t scratch_cap;

static void *scratch_get(size_t n) {
    if (n <= scratch_cap) return scratch;
    free(scratch);
    scratch_cap = 0;
    scratch = NULL;
    if (posix_memalign(&scratch, 64, n) != 0) return scratch = NULL;
    scratch_cap = n;
    return scratch;
}

static int check_threads(const char *fn, int threads) {
    if (threads < 1) {
        PyErr_Format(PyExc_ValueError, "%s: threads must be at least 1, got %d", fn, threads);
        return -1;
    }
    return 0;
}

/* ---- the parallel jobs ------------------------------------------------- */

typedef struct {
    mm_fn fn;
    const uint8_t *w;
    size_t rb;
    int rows, chunk;
    act_t *act;
    float *out;
    ptrdiff_t ostride;
} mm_job;

static void mm_task(void *ctx, int c) {
    mm_job *j = ctx;
    int r0 = c * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    j->fn(j->w, j->rb, r0, r1, j->act, j->out, j->ostride);
}

#define QUANT_TOKENS 4 /* tokens per chunk of the activation quantization */

static void quant_task(void *ctx, int c) {
    act_t *a = ctx;
    int t0 = c * QUANT_TOKENS, t1 = t0 + QUANT_TOKENS < a->T ? t0 + QUANT_TOKENS : a->T;
    act_quantize_rows(a, t0, t1);
}

/* Waking a worker costs about a microsecond: below ~64K multiply-adds per
 * thread (a few microseconds of work) more threads only add that. */
static int useful_threads(int threads, double work) {
    int most = (int)(work / 65536) + 1;
    return threads < most ? threads : most;
}

/* Several chunks per thread so that a thread the OS delays (a busy
 * machine) leaves its share to the others; whole 16-row tiles for the
 * kernels that work on several rows at once. */
static int chunk_rows(int rows, int nth) {
    if (nth == 1) return rows;
    int c = (rows + 4 * nth - 1) / (4 * nth);
    c = (c + 15) & ~15;
    return c < 16 ? 16 : c;
}

/* ---- the pool, for chord_core._attention (pool_api.h) --------------------- */

typedef struct {
    chord_pool_unit fn;
    void *ctx;
} shared_job;

static void shared_task(void *ctx, int unit) {
    shared_job *j = ctx;
    j->fn(j->ctx, unit, pool_thread());
}

static int shared_run(int threads, int units, chord_pool_unit fn, void *ctx) {
    shared_job job = {fn, ctx};
    pthread_mutex_lock(&compute_lock); /* one job at a time, products included */
    int rc = pool_run(threads, units, shared_task, &job);
    pthread_mutex_unlock(&compute_lock);
    return rc;
}

static const chord_pool_api pool_api = {CHORD_POOL_API_VERSION, shared_run};

/* ---- Python functions --------------------------------------------------- */

static PyObject *py_matmul(PyObject *self, PyObject *args) {
    PyObject *wo, *xo, *oo, *po = Py_None;
    long type_id;
    int rows, cols, threads, wt;
    const char *fn = "matmul";
    (void)self;
    if (!PyArg_ParseTuple(args, "OliiOOi|O", &wo, &type_id, &rows, &cols, &xo, &oo, &threads, &po))
        return NULL;
    if (check_type(fn, type_id, cols, &wt) || check_threads(fn, threads)) return NULL;
    if (rows < 1) return PyErr_Format(PyExc_ValueError, "%s: rows must be at least 1, got %d", fn, rows);
    Py_buffer w;
    fbuf x, out;
    if (get_bytes(fn, "w", wo, &w)) return NULL;
    size_t rb = row_bytes(wt, cols);
    if ((size_t)w.len / rb < (size_t)rows) {
        PyErr_Format(PyExc_ValueError, "%s: w has %zd bytes, fewer than %d rows of %zu bytes (%s, %d cols)",
                     fn, w.len, rows, rb, WTYPES[wt].name, cols);
        PyBuffer_Release(&w);
        return NULL;
    }
    Py_buffer pk = {0};
    size_t prb = rows_pack_row_bytes(wt, rows, cols);
    if (po != Py_None) {
        if (get_bytes(fn, "packed", po, &pk)) goto fail_w;
        if (!prb) {
            PyErr_Format(PyExc_ValueError, "%s: packed is for %s, rows a multiple of %d; got %s with %d rows",
                         fn, "Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0", PACK_ROWS, WTYPES[wt].name, rows);
            goto fail_w;
        }
        if ((size_t)pk.len < prb * (size_t)rows) {
            PyErr_Format(PyExc_ValueError, "%s: packed has %zd bytes, not the %zu of %d rows packed (%s, %d cols)",
                         fn, pk.len, prb * (size_t)rows, rows, WTYPES[wt].name, cols);
            goto fail_w;
        }
    }
    if (get_floats(fn, "x", xo, 0, 1, &x)) goto fail_w;
    if (x.cols != cols) {
        PyErr_Format(PyExc_ValueError, "%s: x has %zd columns, expected cols = %d", fn, x.cols, cols);
        goto fail_x;
    }
    if (get_floats(fn, "out", oo, 1, 0, &out)) goto fail_x;
    if (out.rows != x.rows || out.cols < rows) {
        PyErr_Format(PyExc_ValueError, "%s: out has shape (%zd, %zd), expected (%zd, >= %d)", fn,
                     out.rows, out.cols, x.rows, rows);
        goto fail_out;
    }
    int T = (int)x.rows;
    if (T > 0) {
        const isa_table *isa = isa_current();
        enum act_kind kind = WTYPES[wt].act;
        int failed = 0;
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&compute_lock);
        size_t need = act_scratch_bytes(kind, T, cols);
        void *s = need ? scratch_get(need) : NULL;
        if (need && !s) {
            failed = 1;
        } else {
            act_t act;
            act_bind(&act, kind, T, cols, x.data, s);
            if (kind != ACT_F32)
                pool_run(threads, (T + QUANT_TOKENS - 1) / QUANT_TOKENS, quant_task, &act);
            int nth = useful_threads(threads, (double)rows * cols * T);
            int chunk = chunk_rows(rows, nth);
            mm_job job = {isa->mm[wt], w.buf, rb, rows, chunk, &act, out.data, out.stride};
            if (pk.buf && isa->packed[wt]) { /* chunks are whole groups */
                job.fn = isa->packed[wt];
                job.w = pk.buf;
                job.rb = prb;
            }
            pool_run(nth, (rows + chunk - 1) / chunk, mm_task, &job);
        }
        pthread_mutex_unlock(&compute_lock);
        Py_END_ALLOW_THREADS
        if (failed) {
            PyErr_NoMemory();
            goto fail_out;
        }
    }
    release_floats(&out);
    release_floats(&x);
    if (pk.obj) PyBuffer_Release(&pk);
    PyBuffer_Release(&w);
    Py_RETURN_NONE;
fail_out:
    release_floats(&out);
fail_x:
    release_floats(&x);
fail_w:
    if (pk.obj) PyBuffer_Release(&pk);
    PyBuffer_Release(&w);
    return NULL;
}

typedef struct {
    int wt, cols, nrows;
    const uint8_t *w;
    size_t rb;
    float *out;
} dq_job;

#define DQ_ROWS 8 /* rows per chunk of dequantize_rows */

static void dq_task(void *ctx, int c) {
    dq_job *j = ctx;
    int r0 = c * DQ_ROWS, r1 = r0 + DQ_ROWS < j->nrows ? r0 + DQ_ROWS : j->nrows;
    for (int r = r0; r < r1; r++)
        dequant_row(j->wt, j->w + (size_t)r * j->rb, j->out + (size_t)r * j->cols, j->cols);
}

static int check_out_rows(const char *fn, const fbuf *out, Py_ssize_t n, int cols) {
    if (out->rows * out->cols != (Py_ssize_t)n * cols || out->cols != cols) {
        PyErr_Format(PyExc_ValueError, "%s: out has shape (%zd, %zd), expected (%zd, %d)", fn,
                     out->rows, out->cols, n, cols);
        return -1;
    }
    return 0;
}

static PyObject *py_dequantize_rows(PyObject *self, PyObject *args) {
    PyObject *wo, *oo;
    long type_id;
    int cols, row0, nrows, threads, wt;
    const char *fn = "dequantize_rows";
    (void)self;
    if (!PyArg_ParseTuple(args, "OliiiOi", &wo, &type_id, &cols, &row0, &nrows, &oo, &threads))
        return NULL;
    if (check_type(fn, type_id, cols, &wt) || check_threads(fn, threads)) return NULL;
    if (row0 < 0 || nrows < 0)
        return PyErr_Format(PyExc_ValueError, "%s: row0 %d and nrows %d must be >= 0", fn, row0, nrows);
    Py_buffer w;
    fbuf out;
    if (get_bytes(fn, "w", wo, &w)) return NULL;
    size_t rb = row_bytes(wt, cols);
    if ((size_t)w.len / rb < (size_t)row0 + (size_t)nrows) {
        PyErr_Format(PyExc_ValueError, "%s: rows %d..%d are past the end of w (%zd rows of %s, %d cols)",
                     fn, row0, row0 + nrows - 1, (Py_ssize_t)((size_t)w.len / rb), WTYPES[wt].name, cols);
        PyBuffer_Release(&w);
        return NULL;
    }
    if (get_floats(fn, "out", oo, 1, 1, &out)) goto fail_w;
    if (check_out_rows(fn, &out, nrows, cols)) goto fail_out;
    dq_job job = {wt, cols, nrows, (const uint8_t *)w.buf + (size_t)row0 * rb, rb, out.data};
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&compute_lock);
    pool_run(threads, (nrows + DQ_ROWS - 1) / DQ_ROWS, dq_task, &job);
    pthread_mutex_unlock(&compute_lock);
    Py_END_ALLOW_THREADS
    release_floats(&out);
    PyBuffer_Release(&w);
    Py_RETURN_NONE;
fail_out:
    release_floats(&out);
fail_w:
    PyBuffer_Release(&w);
    return NULL;
}

static PyObject *py_get_rows(PyObject *self, PyObject *args) {
    PyObject *wo, *io, *oo;
    long type_id;
    int cols, wt;
    const char *fn = "get_rows";
    (void)self;
    if (!PyArg_ParseTuple(args, "OliOO", &wo, &type_id, &cols, &io, &oo)) return NULL;
    if (check_type(fn, type_id, cols, &wt)) return NULL;
    Py_buffer w, ids;
    fbuf out;
    if (get_bytes(fn, "w", wo, &w)) return NULL;
    if (get_int64s(fn, "ids", io, &ids)) goto fail_w;
    size_t rb = row_bytes(wt, cols);
    long long nw = (long long)((size_t)w.len / rb), n = ids.shape[0];
    const int64_t *id = ids.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= nw) {
            PyErr_Format(PyExc_IndexError, "%s: row id %lld at position %zd is outside 0..%lld", fn,
                         (long long)id[i], i, nw - 1);
            goto fail_ids;
        }
    if (get_floats(fn, "out", oo, 1, 1, &out)) goto fail_ids;
    if (check_out_rows(fn, &out, n, cols)) goto fail_out;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        dequant_row(wt, (const uint8_t *)w.buf + (size_t)id[i] * rb, out.data + (size_t)i * cols, cols);
    Py_END_ALLOW_THREADS
    release_floats(&out);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&w);
    Py_RETURN_NONE;
fail_out:
    release_floats(&out);
fail_ids:
    PyBuffer_Release(&ids);
fail_w:
    PyBuffer_Release(&w);
    return NULL;
}

static PyObject *isa_names(void) {
    const char *names[8];
    int n = isa_available(names, 8);
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) PyTuple_SET_ITEM(t, i, PyUnicode_FromString(names[i]));
    return t;
}

static PyObject *py_isa(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyUnicode_FromString(isa_current()->name);
}

static PyObject *py_isas(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return isa_names();
}

/* Selects `name`, or sets `exc` to "<what> is not a kernel path this CPU can run (...)". */
static int select_or_explain(const char *name, PyObject *exc, const char *what) {
    if (isa_select(name) == 0) return 0;
    const char *names[8];
    int n = isa_available(names, 8);
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    PyErr_Format(exc, "%s%.40s' is not a kernel path this CPU can run (it can run: %s)", what, name, list);
    return -1;
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyUnicode_Check(arg)) return PyErr_Format(PyExc_TypeError, "set_isa: name must be a str");
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    pthread_mutex_lock(&compute_lock); /* no kernel is half-way through a table */
    int rc = select_or_explain(name, PyExc_ValueError, "set_isa: '");
    pthread_mutex_unlock(&compute_lock);
    if (rc) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"matmul", py_matmul, METH_VARARGS,
     "matmul(w, type_id, rows, cols, x, out, threads, packed=None): out[t, r] = sum_c W[r, c] * x[t, c]; "
     "packed (pack_rows' out) serves the products where this path has kernels for it."},
    {"packed_size", py_packed_size, METH_VARARGS,
     "packed_size(type_id, rows, cols) -> bytes pack_rows writes, or 0 if this path's kernels take no packed form."},
    {"pack_rows", py_pack_rows, METH_VARARGS,
     "pack_rows(w, type_id, rows, cols, out): the rows repacked for the few-token kernels (rows_pack.h) into out."},
    {"get_rows", py_get_rows, METH_VARARGS,
     "get_rows(w, type_id, cols, ids, out): dequantize rows ids of w into out (len(ids), cols)."},
    {"dequantize_rows", py_dequantize_rows, METH_VARARGS,
     "dequantize_rows(w, type_id, cols, row0, nrows, out, threads): rows row0.. into out."},
    {"isa", py_isa, METH_NOARGS, "isa() -> the kernel path in use."},
    {"isas", py_isas, METH_NOARGS, "isas() -> the kernel paths this CPU can run, best first."},
    {"set_isa", py_set_isa, METH_O, "set_isa(name): use that kernel path (ValueError if unsupported)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_kernels",
                                       "Matrix kernels on GGUF quantized blocks.", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    const char *forced = getenv("CHORD_ISA");
    if (forced && *forced && select_or_explain(forced, PyExc_ImportError, "CHORD_ISA='"))
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    PyObject *cap = m ? PyCapsule_New((void *)&pool_api, CHORD_POOL_CAPSULE, NULL) : NULL;
    if (!cap || PyModule_AddObject(m, "_pool_api", cap) < 0) {
        Py_XDECREF(cap);
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}
