/* chord_core._gguf_strings: the one hot loop of reading GGUF metadata.
 *
 * A vocabulary is an array of ~50-250k strings (tokens, merges), each an
 * 8-byte little-endian length and its bytes. In Python that loop is most of a
 * small model's load time; here it is one pass. core/gguf_file.py keeps the
 * Python loop as the fallback and defines the semantics this must match:
 * UTF-8 decoded with errors="replace", and a truncated array is an error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* read_string_array(buffer, pos, count) -> (list[str], end)
 * Raises EOFError when the array runs past the end of the buffer. */
static PyObject *read_string_array(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, count;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &pos, &count)) return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    PyObject *out = NULL;
    if (pos < 0 || count < 0 || count > (end - pos) / 8 + 1) goto truncated;
    out = PyList_New(count);
    if (!out) goto fail;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (end - pos < 8) goto truncated;
        uint64_t n;
        memcpy(&n, buf + pos, 8); /* GGUF is little-endian, as every host we build for */
        pos += 8;
        if (n > (uint64_t)(end - pos)) goto truncated;
        PyObject *s = PyUnicode_DecodeUTF8((const char *)buf + pos, (Py_ssize_t)n, "replace");
        if (!s) goto fail;
        PyList_SET_ITEM(out, i, s);
        pos += (Py_ssize_t)n;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", out, pos);
truncated:
    PyErr_SetString(PyExc_EOFError, "string array runs past the end of the file");
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"read_string_array", read_string_array, METH_VARARGS,
     "read_string_array(buffer, pos, count) -> (list[str], end): GGUF strings, UTF-8 with errors='replace'"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gguf_strings", NULL, -1, methods};

PyMODINIT_FUNC PyInit__gguf_strings(void) { return PyModule_Create(&module); }
