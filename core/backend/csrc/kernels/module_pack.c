/* chord_core._kernels' packing functions (rows_pack.h): packed_size and
 * pack_rows, with the module's argument checks. */
#include "buffers.h"
#include "kernels.h"
#include "rows_pack.h"

PyObject *py_packed_size(PyObject *self, PyObject *args) {
    long type_id;
    int rows, cols, wt;
    (void)self;
    if (!PyArg_ParseTuple(args, "lii", &type_id, &rows, &cols)) return NULL;
    if (check_type("packed_size", type_id, cols, &wt)) return NULL;
    size_t prb = isa_current()->packed[wt] ? rows_pack_row_bytes(wt, rows, cols) : 0;
    return PyLong_FromSize_t(prb * (size_t)(rows > 0 ? rows : 0));
}

PyObject *py_pack_rows(PyObject *self, PyObject *args) {
    PyObject *wo, *oo;
    long type_id;
    int rows, cols, wt;
    const char *fn = "pack_rows";
    (void)self;
    if (!PyArg_ParseTuple(args, "OliiO", &wo, &type_id, &rows, &cols, &oo)) return NULL;
    if (check_type(fn, type_id, cols, &wt)) return NULL;
    size_t prb = rows > 0 ? rows_pack_row_bytes(wt, rows, cols) : 0;
    if (!prb)
        return PyErr_Format(PyExc_ValueError, "%s: %s with %d rows is not packed (32-element types, rows a multiple of %d)",
                            fn, WTYPES[wt].name, rows, PACK_ROWS);
    Py_buffer w, out;
    if (get_bytes(fn, "w", wo, &w)) return NULL;
    size_t rb = row_bytes(wt, cols);
    if ((size_t)w.len < rb * (size_t)rows) {
        PyErr_Format(PyExc_ValueError, "%s: w has %zd bytes, fewer than %d rows of %zu bytes (%s, %d cols)",
                     fn, w.len, rows, rb, WTYPES[wt].name, cols);
        PyBuffer_Release(&w);
        return NULL;
    }
    if (PyObject_GetBuffer(oo, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&w);
        return NULL;
    }
    if ((size_t)out.len != prb * (size_t)rows) {
        PyErr_Format(PyExc_ValueError, "%s: out has %zd bytes, not the %zu of %d rows packed (%s, %d cols)",
                     fn, out.len, prb * (size_t)rows, rows, WTYPES[wt].name, cols);
        PyBuffer_Release(&out);
        PyBuffer_Release(&w);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rows_pack(wt, w.buf, rb, rows, cols, out.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&w);
    Py_RETURN_NONE;
}
