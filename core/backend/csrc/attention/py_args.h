/* Arrays in through the buffer protocol, checked with one-line ValueErrors
 * that name the function and the argument (no NumPy headers needed). */
#ifndef CHORD_ATTENTION_PY_ARGS_H
#define CHORD_ATTENTION_PY_ARGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

typedef struct {
    const char *name;
    Py_buffer view;
    int held;
} Arg;

static inline void args_release(Arg *args, int n)
{
    for (int i = 0; i < n; i++)
        if (args[i].held) {
            PyBuffer_Release(&args[i].view);
            args[i].held = 0;
        }
}

/* "f" for float32, "e" for float16, ignoring a native byte-order prefix. */
static inline char args_element_type(const Py_buffer *b)
{
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (f[0] && !f[1] && ((f[0] == 'f' && b->itemsize == 4) || (f[0] == 'e' && b->itemsize == 2)))
        return f[0];
    return 0;
}

/* Whether every dimension after the first is C-contiguous (the first may
 * have any stride: the rows of a view into a wider array). */
static inline int args_rows_contiguous(const Py_buffer *b)
{
    Py_ssize_t want = b->itemsize;
    for (int d = b->ndim - 1; d >= 1; d--) {
        if (b->shape[d] > 1 && b->strides[d] != want)
            return 0;
        want *= b->shape[d];
    }
    return b->ndim < 1 || b->shape[0] <= 1 || b->strides[0] >= want;
}

/* `rows_strided`: the first dimension may have any stride at least a row. */
static inline int args_get(const char *fn, PyObject *obj, Arg *a, int writable, int ndim, const char *types,
                           int rows_strided)
{
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &a->view, flags) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: %s must be a %sarray, got %.80s", fn, a->name,
                     writable ? "writable " : "", Py_TYPE(obj)->tp_name);
        return -1;
    }
    a->held = 1;
    char t = args_element_type(&a->view);
    int laid_out = a->view.ndim == ndim &&
                   (rows_strided ? args_rows_contiguous(&a->view) : PyBuffer_IsContiguous(&a->view, 'C'));
    if (!laid_out || !t || !strchr(types, t)) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be a %s%dD %s array (format %s, %d dims)", fn, a->name,
                     rows_strided ? "row-contiguous " : "C-contiguous ", ndim,
                     strlen(types) > 1 ? "float32 or float16" : "float32", a->view.format ? a->view.format : "B",
                     a->view.ndim);
        return -1;
    }
    return 0;
}

#endif
