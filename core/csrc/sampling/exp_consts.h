/* exp(x) for float32 x <= 0, as Cephes' expf: x = n ln2 + r with |r| <= ln2/2
 * (ln2 split in two so n ln2 is exact), exp(r) by a degree-7 polynomial,
 * times 2^n. Within 2 ulp of the true value; NumPy's own float32 exp is
 * within 1, so the sums agree to a few parts in 1e7. Below EXP_LOW (-inf
 * included) the result would be denormal or 0: it counts as exp(EXP_LOW),
 * about 1.2e-38 (a clamp, cheaper than a mask; a sum that holds exp(0) = 1
 * gains less than 1e-32 from it even over a million tokens). */
#ifndef CHORD_EXP_CONSTS_H
#define CHORD_EXP_CONSTS_H

#define EXP_LOW (-87.33654f)
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

#endif
