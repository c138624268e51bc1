/* Per-type unpacking of one weight block into small integer arrays plus
 * float scales: the portable kernels' (generic.h) and the tile packer's
 * (tile_pack.c) view of every block format. Compiled once per includer,
 * with the includer's KFN suffix and target. */
#ifndef KFN
#error "define KFN(name) before including unpack.h"
#endif

/* ---- 32-element blocks: value = d * q + m -------------------------------- */

typedef struct {
    int8_t q[32];
    float d, m;
} KFN(blk32);

static inline void KFN(unpack_q4_0)(const uint8_t *b, KFN(blk32) *u) {
    u->d = f16_to_f32(rd16(b));
    u->m = 0.f;
    for (int j = 0; j < 16; j++) {
        u->q[j] = (int8_t)((b[2 + j] & 0xF) - 8);
        u->q[j + 16] = (int8_t)((b[2 + j] >> 4) - 8);
    }
}

static inline void KFN(unpack_q4_1)(const uint8_t *b, KFN(blk32) *u) {
    u->d = f16_to_f32(rd16(b));
    u->m = f16_to_f32(rd16(b + 2));
    for (int j = 0; j < 16; j++) {
        u->q[j] = (int8_t)(b[4 + j] & 0xF);
        u->q[j + 16] = (int8_t)(b[4 + j] >> 4);
    }
}

/* Bit k of a byte -> 0x10 in byte k of a word (Q5's fifth bits), by table:
 * shifting each bit out on its own kept this loop scalar and 10x slower. */
#define KQ5_BIT(b, k) ((uint64_t)(((b) >> (k)) & 1) << (8 * (k) + 4))
#define KQ5_SPREAD(b)                                                                          \
    (KQ5_BIT(b, 0) | KQ5_BIT(b, 1) | KQ5_BIT(b, 2) | KQ5_BIT(b, 3) | KQ5_BIT(b, 4) |           \
     KQ5_BIT(b, 5) | KQ5_BIT(b, 6) | KQ5_BIT(b, 7))
#define KQ5_S2(n) KQ5_SPREAD(n), KQ5_SPREAD(n + 1), KQ5_SPREAD(n + 2), KQ5_SPREAD(n + 3)
#define KQ5_S4(n) KQ5_S2(n), KQ5_S2(n + 4), KQ5_S2(n + 8), KQ5_S2(n + 12)
#define KQ5_S6(n) KQ5_S4(n), KQ5_S4(n + 16), KQ5_S4(n + 32), KQ5_S4(n + 48)
static const uint64_t KFN(fifth_bits)[256] = {KQ5_S6(0), KQ5_S6(64), KQ5_S6(128), KQ5_S6(192)};

/* 16 nibble bytes + 32 fifth bits -> 32 values minus off, eight per word. */
static inline void KFN(unpack_q5)(const uint8_t *qs, uint32_t qh, int off, KFN(blk32) *u) {
    const uint64_t lo4 = 0x0F0F0F0F0F0F0F0FULL, top = 0x8080808080808080ULL;
    const uint64_t offs = 0x0101010101010101ULL * (uint64_t)off;
    uint64_t w0, w1, v[4];
    memcpy(&w0, qs, 8);
    memcpy(&w1, qs + 8, 8);
    v[0] = (w0 & lo4) | KFN(fifth_bits)[qh & 0xFF];
    v[1] = (w1 & lo4) | KFN(fifth_bits)[(qh >> 8) & 0xFF];
    v[2] = ((w0 >> 4) & lo4) | KFN(fifth_bits)[(qh >> 16) & 0xFF];
    v[3] = ((w1 >> 4) & lo4) | KFN(fifth_bits)[qh >> 24];
    for (int k = 0; k < 4; k++) v[k] = ((v[k] | top) - offs) ^ top; /* bytes < 0x80: no borrows */
    memcpy(u->q, v, 32);
}

static inline void KFN(unpack_q5_0)(const uint8_t *b, KFN(blk32) *u) {
    u->d = f16_to_f32(rd16(b));
    u->m = 0.f;
    KFN(unpack_q5)(b + 6, rd32(b + 2), 16, u);
}

static inline void KFN(unpack_q5_1)(const uint8_t *b, KFN(blk32) *u) {
    u->d = f16_to_f32(rd16(b));
    u->m = f16_to_f32(rd16(b + 2));
    KFN(unpack_q5)(b + 8, rd32(b + 4), 0, u);
}

static inline void KFN(unpack_q8_0)(const uint8_t *b, KFN(blk32) *u) {
    u->d = f16_to_f32(rd16(b));
    u->m = 0.f;
    memcpy(u->q, b + 2, 32);
}

/* ---- k-quants: value = d * sc[j] * q - dmin * mn[j], j = element / 16 ---- */

typedef struct {
    int8_t q[QK_K];
    int32_t sc[16], mn[16];
    float d, dmin;
} KFN(blkk);

static inline void KFN(unpack_q2_k)(const uint8_t *b, KFN(blkk) *u) {
    u->d = f16_to_f32(rd16(b + 80));
    u->dmin = f16_to_f32(rd16(b + 82));
    for (int j = 0; j < 16; j++) {
        u->sc[j] = b[j] & 0xF;
        u->mn[j] = b[j] >> 4;
    }
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++)
                u->q[h * 128 + k * 32 + l] = (int8_t)((b[16 + h * 32 + l] >> (2 * k)) & 3);
}

static inline void KFN(unpack_q3_k)(const uint8_t *b, KFN(blkk) *u) {
    int8_t sc[16];
    q3k_scales(b + 96, sc);
    u->d = f16_to_f32(rd16(b + 108));
    u->dmin = 0.f;
    for (int j = 0; j < 16; j++) {
        u->sc[j] = sc[j];
        u->mn[j] = 0;
    }
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int q = (b[32 + h * 32 + l] >> (2 * k)) & 3;
                int hb = (b[l] >> (h * 4 + k)) & 1;
                u->q[h * 128 + k * 32 + l] = (int8_t)(q - 4 + 4 * hb);
            }
}

static inline void KFN(k4_scales)(const uint8_t *b, KFN(blkk) *u) {
    u->d = f16_to_f32(rd16(b));
    u->dmin = f16_to_f32(rd16(b + 2));
    for (int j = 0; j < 8; j++) {
        int sc, m;
        k4_scale_min(j, b + 4, &sc, &m);
        u->sc[2 * j] = u->sc[2 * j + 1] = sc;
        u->mn[2 * j] = u->mn[2 * j + 1] = m;
    }
}

static inline void KFN(unpack_q4_k)(const uint8_t *b, KFN(blkk) *u) {
    KFN(k4_scales)(b, u);
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) {
            u->q[g * 64 + l] = (int8_t)(b[16 + g * 32 + l] & 0xF);
            u->q[g * 64 + 32 + l] = (int8_t)(b[16 + g * 32 + l] >> 4);
        }
}

static inline void KFN(unpack_q5_k)(const uint8_t *b, KFN(blkk) *u) {
    KFN(k4_scales)(b, u);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) {
            int h0 = ((qh[l] >> (2 * g)) & 1) << 4, h1 = ((qh[l] >> (2 * g + 1)) & 1) << 4;
            u->q[g * 64 + l] = (int8_t)((qs[g * 32 + l] & 0xF) | h0);
            u->q[g * 64 + 32 + l] = (int8_t)((qs[g * 32 + l] >> 4) | h1);
        }
}

static inline void KFN(unpack_q6_k)(const uint8_t *b, KFN(blkk) *u) {
    u->d = f16_to_f32(rd16(b + 208));
    u->dmin = 0.f;
    for (int j = 0; j < 16; j++) {
        u->sc[j] = (int8_t)b[192 + j];
        u->mn[j] = 0;
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        int8_t *q = u->q + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}
