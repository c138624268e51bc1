/* The flash body's block primitives for 1..4 real rows, shared by the x86
 * ISA files: each defines ALWAYS_INLINE, dot_nx4 (Q.K of nr rows x 4 keys)
 * and pv_n (P.V of nr rows) under its own target pragma, then includes this,
 * so nr picks a compiled specialization once per call and the loops never
 * test it. */
#ifndef FLASH_ROWS_H
#define FLASH_ROWS_H

#define FLASH_BY_ROWS(nr, call) \
    switch (nr) {               \
    case 1: call(1); break;     \
    case 2: call(2); break;     \
    case 3: call(3); break;     \
    default: call(4); break;    \
    }

ALWAYS_INLINE void vec_dot_4x4(const float *const q[4], const float *const k[4], int64_t d, float *s, int64_t ss,
                               int nr)
{
#define DOT(n) dot_nx4(q, (const void *const *)k, d, s, ss, 0, n)
    FLASH_BY_ROWS(nr, DOT)
#undef DOT
}

ALWAYS_INLINE void vec_dot_4x4_h(const float *const q[4], const uint16_t *const k[4], int64_t d, float *s,
                                 int64_t ss, int nr)
{
#define DOT(n) dot_nx4(q, (const void *const *)k, d, s, ss, 1, n)
    FLASH_BY_ROWS(nr, DOT)
#undef DOT
}

ALWAYS_INLINE void vec_pv_4(float *acc, int64_t dv, const float *e, int64_t es, const float *v, int64_t n, int nr)
{
#define PV(r) pv_n(acc, dv, e, es, v, n, 0, r)
    FLASH_BY_ROWS(nr, PV)
#undef PV
}

ALWAYS_INLINE void vec_pv_4_h(float *acc, int64_t dv, const float *e, int64_t es, const uint16_t *v, int64_t n,
                              int nr)
{
#define PV(r) pv_n(acc, dv, e, es, v, n, 1, r)
    FLASH_BY_ROWS(nr, PV)
#undef PV
}

#endif
