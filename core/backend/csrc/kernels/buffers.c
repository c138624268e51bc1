#include "buffers.h"

#include "kernels.h"

#include <stdint.h>
#include <string.h>

/* "f", "<f", "=f" (and "@f"): a native little-endian float32. */
static int format_is(const char *fmt, char code) {
    if (fmt == NULL) return 0;
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@') fmt++;
    return fmt[0] == code && fmt[1] == 0;
}

int get_bytes(const char *fn, const char *arg, PyObject *obj, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a buffer (a uint8 NumPy array), got %.80s",
                     fn, arg, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: %s must be C-contiguous", fn, arg);
        return -1;
    }
    return 0;
}

int get_floats(const char *fn, const char *arg, PyObject *obj, int writable, int contiguous,
               fbuf *out) {
    memset(out, 0, sizeof *out);
    int flags = writable ? PyBUF_RECORDS : PyBUF_RECORDS_RO;
    if (PyObject_GetBuffer(obj, &out->view, flags) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a %sfloat32 array, got %.80s", fn, arg,
                     writable ? "writable " : "", Py_TYPE(obj)->tp_name);
        return -1;
    }
    out->held = 1;
    Py_buffer *v = &out->view;
    if (!format_is(v->format, 'f') || v->itemsize != 4) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be float32, got format %.20s", fn, arg,
                     v->format ? v->format : "?");
        goto fail;
    }
    if (v->ndim == 1) {
        out->rows = 1;
        out->cols = v->shape[0];
        out->stride = v->shape[0];
        if (v->strides[0] != 4) goto strided;
    } else if (v->ndim == 2) {
        out->rows = v->shape[0];
        out->cols = v->shape[1];
        if (v->strides[1] != 4 && out->cols > 1) goto strided;
        if (v->strides[0] % 4 != 0 || (v->strides[0] < 4 * out->cols && out->rows > 1)) goto strided;
        out->stride = out->rows > 1 ? v->strides[0] / 4 : out->cols;
        if (contiguous && out->rows > 1 && out->stride != out->cols) goto strided;
    } else {
        PyErr_Format(PyExc_ValueError, "%s: %s must be 1-D or 2-D, got %d dimensions", fn, arg,
                     v->ndim);
        goto fail;
    }
    if ((uintptr_t)v->buf % 4 != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %s is not 4-byte aligned", fn, arg);
        goto fail;
    }
    out->data = v->buf;
    return 0;
strided:
    PyErr_Format(PyExc_ValueError, "%s: %s must have contiguous float32 rows%s", fn, arg,
                 contiguous ? " (C-contiguous)" : " (inner stride 4 bytes, rows not overlapping)");
fail:
    release_floats(out);
    return -1;
}

int get_int64s(const char *fn, const char *arg, PyObject *obj, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be an int64 array, got %.80s", fn, arg,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *f = view->format ? view->format : "";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    int ok = view->itemsize == 8 && (strcmp(f, "q") == 0 || strcmp(f, "l") == 0);
    if (!ok || view->ndim != 1 || !PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a 1-D contiguous int64 array", fn, arg);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

void release_floats(fbuf *b) {
    if (b->held) PyBuffer_Release(&b->view);
    b->held = 0;
}

int check_type(const char *fn, long type_id, int cols, int *wt) {
    *wt = wtype_from_ggml(type_id);
    if (*wt < 0) {
        PyErr_Format(PyExc_ValueError, "%s: ggml type id %ld is not supported", fn, type_id);
        return -1;
    }
    int be = WTYPES[*wt].block_elems;
    if (cols <= 0 || cols % be != 0) {
        PyErr_Format(PyExc_ValueError, "%s: cols %d must be a positive multiple of %s's block of %d",
                     fn, cols, WTYPES[*wt].name, be);
        return -1;
    }
    return 0;
}

size_t row_bytes(int wt, int cols) {
    return (size_t)cols / WTYPES[wt].block_elems * WTYPES[wt].block_bytes;
}
