/* Argument checking for the module's functions: each failure sets a one-line
 * Python error naming the function, the argument and what was wrong. */
#ifndef CHORD_BUFFERS_H
#define CHORD_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* A float32 array seen through the buffer protocol: rows x cols with
 * `stride` floats between rows and unit stride inside a row. */
typedef struct {
    Py_buffer view;
    int held;
    float *data;
    Py_ssize_t rows, cols, stride;
} fbuf;

/* Any C-contiguous buffer, read as bytes. */
int get_bytes(const char *fn, const char *arg, PyObject *obj, Py_buffer *view);

/* float32, 1-D (one row) or 2-D. contiguous: rows must also be packed. */
int get_floats(const char *fn, const char *arg, PyObject *obj, int writable, int contiguous,
               fbuf *out);

/* int64, 1-D, C-contiguous. */
int get_int64s(const char *fn, const char *arg, PyObject *obj, Py_buffer *view);

void release_floats(fbuf *b);

/* The kernels' type index of ggml type `type_id` into *wt, checking that
 * `cols` is a whole number of its blocks. */
int check_type(const char *fn, long type_id, int cols, int *wt);

/* Bytes of one row of `cols` elements of type `wt`. */
size_t row_bytes(int wt, int cols);

/* module_pack.c */
PyObject *py_packed_size(PyObject *self, PyObject *args);
PyObject *py_pack_rows(PyObject *self, PyObject *args);

#endif
