/* The k-quants' one-token driver, shared by simd_k_avx2.c and
 * simdk_avx512.h (included once by each, under its target pragma): four
 * rows at a time, each super-block's int32 lanes (sb_NAME: is / js, the
 * products with the first / second level of quants; ms / ns, the mins
 * with their sums) summed to exact integers per row, then kernels.h's
 * float order on four lanes, one row each:
 *   acc = fma(float(256 I1 + I2), d * dx, acc);
 *   acc = fnma(float(256 M1 + M2), dmin * dx, acc)
 * Rows are paired as soon as they are done (fewer live registers). The
 * includer defines K_DECL (the lane variables is0..3, js0..3, ms0..3,
 * ns0..3), K_SETUP, K_ROW(NAME, r), K_PAIR / K_PAIR32 / K_FINISH4
 * (sum_rows4 in two steps, for the is / js lanes) and K_STORE. */

/* DOFF: where d sits in the block; dmin follows it where HASMIN. */
#define MM_K(NAME, BB, DOFF, HASMIN)                                                    \
    static void mm_##NAME(const uint8_t *w, size_t rb, int r0, int r1, const act_t *a,         \
                          float *out, ptrdiff_t os) {                                          \
        const int nb = a->cols / QK_K;                                                         \
        K_SETUP                                                                                \
        for (int g = r0; g < r1; g += 4) {                                                     \
            const int n = r1 - g < 4 ? r1 - g : 4;                                             \
            int32_t off[4];                                                                    \
            group_offsets(off, 4, n, rb);                                                      \
            const uint8_t *p[4];                                                               \
            for (int r = 0; r < 4; r++) p[r] = w + (size_t)g * rb + off[r];                    \
            for (int t = 0; t < a->T; t++) {                                                   \
                const int8_t *x = a->q + (size_t)t * a->cols, *x2 = a->q2 + (size_t)t * a->cols; \
                const float *xd = a->d + (size_t)t * nb;                                       \
                const int16_t *bs = a->sum + (size_t)t * (a->cols / 16);                       \
                const int16_t *bs2 = a->sum2 + (size_t)t * (a->cols / 16);                     \
                __m128 acc = _mm_setzero_ps();                                                 \
                for (int i = 0; i < nb; i++, x += QK_K, x2 += QK_K, bs += 16, bs2 += 16) {     \
                    if (t == 0) prefetch_next_group(w + (size_t)(g + 4) * rb, 4 * BB, i, 0);   \
                    const uint8_t *blk[4] = {p[0] + (size_t)i * BB, p[1] + (size_t)i * BB,     \
                                             p[2] + (size_t)i * BB, p[3] + (size_t)i * BB};    \
                    K_DECL                                                                     \
                    K_ROW(NAME, 0) K_ROW(NAME, 1)                                              \
                    K_PAIR i01 = K_PAIR32(is0, is1), j01 = K_PAIR32(js0, js1);                 \
                    __m256i m01 = pair32_256(ms0, ms1), n01 = pair32_256(ns0, ns1);            \
                    K_ROW(NAME, 2) K_ROW(NAME, 3)                                              \
                    K_PAIR i23 = K_PAIR32(is2, is3), j23 = K_PAIR32(js2, js3);                 \
                    __m256i m23 = pair32_256(ms2, ms3), n23 = pair32_256(ns2, ns3);            \
                    __m128 d, dmin = _mm_setzero_ps(), dx = _mm_set1_ps(xd[i]);                \
                    if (HASMIN) f16x4_pairs(blk, DOFF, &d, &dmin);                             \
                    else d = f16x4(blk, DOFF);                                                 \
                    __m128 f = two_level4(K_FINISH4(i01, i23), K_FINISH4(j01, j23));           \
                    acc = _mm_fmadd_ps(f, _mm_mul_ps(d, dx), acc);                             \
                    if (HASMIN) {                                                              \
                        __m128 gm = two_level4(finish4_256(m01, m23), finish4_256(n01, n23));  \
                        acc = _mm_fnmadd_ps(gm, _mm_mul_ps(dmin, dx), acc);                    \
                    }                                                                          \
                }                                                                              \
                K_STORE(out + (ptrdiff_t)t * os + g, (1u << n) - 1, acc);                      \
            }                                                                                  \
        }                                                                                      \
    }
