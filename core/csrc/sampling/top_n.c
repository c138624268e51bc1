/* The best k logits as a binary heap whose root is the worst kept (the
 * candidate to evict). The vocabulary is read in id order, so a newcomer
 * tying the root's logit has the higher id and loses: it enters only when
 * strictly above the root, which is what the ISA's next_above finds. */
#include "logit_scan.h"

/* a ranks below b: lower logit, or the same logit and a higher id */
static inline int worse(float va, int64_t ia, float vb, int64_t ib)
{
    return va < vb || (va == vb && ia > ib);
}

static void sift_down(int64_t *ids, float *vals, size_t size, size_t i)
{
    float v = vals[i];
    int64_t id = ids[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= size)
            break;
        if (c + 1 < size && worse(vals[c + 1], ids[c + 1], vals[c], ids[c]))
            c++;
        if (!worse(vals[c], ids[c], v, id))
            break;
        vals[i] = vals[c];
        ids[i] = ids[c];
        i = c;
    }
    vals[i] = v;
    ids[i] = id;
}

void top_n(const ScanIsa *isa, const float *x, size_t n, size_t k, int64_t *ids, float *vals)
{
    for (size_t i = 0; i < k; i++) {
        vals[i] = x[i];
        ids[i] = (int64_t)i;
    }
    for (size_t i = k / 2; i-- > 0;)
        sift_down(ids, vals, k, i);
    for (size_t i = isa->next_above(x, k, n, vals[0]); i < n; i = isa->next_above(x, i + 1, n, vals[0])) {
        vals[0] = x[i];
        ids[0] = (int64_t)i;
        sift_down(ids, vals, k, 0);
    }
    /* heapsort: the worst left moves to the end of what is left */
    for (size_t size = k; size > 1; size--) {
        float v = vals[0];
        int64_t id = ids[0];
        vals[0] = vals[size - 1];
        ids[0] = ids[size - 1];
        vals[size - 1] = v;
        ids[size - 1] = id;
        sift_down(ids, vals, size - 1, 0);
    }
}
