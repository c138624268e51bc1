/* attend_rows: a batched decode step's attention, every sequence's row in one call. */
#ifndef CHORD_ATTEND_ROWS_H
#define CHORD_ATTEND_ROWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pool_api.h"

PyObject *attend_rows(const chord_pool_api *pool, PyObject *args, PyObject *kwargs);

#define ATTEND_ROWS_DOC                                                                                          \
    "attend_rows(q, k_new, v_new, ks, vs, out, starts, window, softcap, threads): one decode row per sequence,\n" \
    "each with its own cache: row b's key k_new[b] and value v_new[b] (n_head_kv, hd) are written at position\n" \
    "starts[b] of ks[b], vs[b] (n_head_kv, cap_b, hd; float32 or float16, rounded as NumPy rounds), then\n"      \
    "q[b] (n_head, hd_k, float32, already scaled) attends over its keys 0..starts[b] (window > 0: the last\n"    \
    "window of them) into out[b] (n_head*hd_v), with the bits attend gives that row alone. q, k_new and v_new\n" \
    "may be row views of a wider array."

#endif
