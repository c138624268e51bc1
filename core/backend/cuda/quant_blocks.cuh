// Block decoders for the GEMV and dequantize kernels (matmul.cu).
//
// A row of `cols` weights is cut into units of 32 weights. A unit is made of
// RUNS runs of RUN consecutive weights (RUNS * RUN = 32); run r starts at
// element run_start(u, r) of the row. decode() gives the unit's 32 quants as
// floats q (in run order) and per run a scale a and offset b: weight = a*q + b.
// A dot product then costs one FMA per weight (q * x) plus two per run.
//
// Weights are stored in planes (layouts.py): each field of a GGUF block
// (scales, quants, high bits) in its own array, [row][block][field bytes],
// so every load is aligned and as wide as the field allows.

typedef unsigned char u8;
typedef unsigned int u32;

// byte k of w (0..255) as a float: 2^23 + byte has the byte as its low
// mantissa bits, so one byte permute and one subtraction replace I2F
__device__ __forceinline__ float byte_f(u32 w, int k) {
    return __int_as_float(__byte_perm(w, 0x4B000000u, 0x7440u + k)) - 8388608.f;
}

__device__ __forceinline__ float half_at(const u8* p) { return __half2float(*(const __half*)p); }

// bits 0..3 of n spread to bit 0 of bytes 0..3
__device__ __forceinline__ u32 spread4(u32 n) { return ((n & 0xF) * 0x00204081u) & 0x01010101u; }

// 16 nibble-packed bytes -> q[0..15] low nibbles, q[16..31] high nibbles,
// each byte or-ed with the fifth bits hi_lo / hi_hi (already at bit 4 of each byte)
__device__ __forceinline__ void nibbles32(const uint4 v, const u32* hi_lo, const u32* hi_hi, float* q) {
    const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const u32 lo = (w[i] & 0x0F0F0F0Fu) | hi_lo[i];
        const u32 hi = ((w[i] >> 4) & 0x0F0F0F0Fu) | hi_hi[i];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            q[4 * i + k] = byte_f(lo, k);
            q[16 + 4 * i + k] = byte_f(hi, k);
        }
    }
}

struct Q4_0 {  // planes: d (2 B), qs (16 B)
    static constexpr int RUNS = 2, RUN = 16;
    __device__ static int run_start(int u, int r) { return 32 * u + 16 * r; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const long blk = row * nu + u;
        const float d = half_at(P[0] + 2 * blk);
        const u32 z[4] = {0, 0, 0, 0};
        nibbles32(*(const uint4*)(P[1] + 16 * blk), z, z, q);
        a[0] = a[1] = d;
        b[0] = b[1] = -8.f * d;
    }
};

struct Q4_1 {  // planes: d|m (4 B), qs (16 B)
    static constexpr int RUNS = 2, RUN = 16;
    __device__ static int run_start(int u, int r) { return 32 * u + 16 * r; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const long blk = row * nu + u;
        const float d = half_at(P[0] + 4 * blk), m = half_at(P[0] + 4 * blk + 2);
        const u32 z[4] = {0, 0, 0, 0};
        nibbles32(*(const uint4*)(P[1] + 16 * blk), z, z, q);
        a[0] = a[1] = d;
        b[0] = b[1] = m;
    }
};

// Q5_0/Q5_1: bit e of the 32-bit qh is the fifth bit of element e
__device__ __forceinline__ void fifth_bits(u32 qh, u32* hi_lo, u32* hi_hi) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        hi_lo[i] = spread4(qh >> (4 * i)) << 4;
        hi_hi[i] = spread4(qh >> (16 + 4 * i)) << 4;
    }
}

struct Q5_0 {  // planes: d (2 B), qh (4 B), qs (16 B)
    static constexpr int RUNS = 2, RUN = 16;
    __device__ static int run_start(int u, int r) { return 32 * u + 16 * r; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const long blk = row * nu + u;
        const float d = half_at(P[0] + 2 * blk);
        u32 hl[4], hh[4];
        fifth_bits(*(const u32*)(P[1] + 4 * blk), hl, hh);
        nibbles32(*(const uint4*)(P[2] + 16 * blk), hl, hh, q);
        a[0] = a[1] = d;
        b[0] = b[1] = -16.f * d;
    }
};

struct Q5_1 {  // planes: d|m (4 B), qh (4 B), qs (16 B)
    static constexpr int RUNS = 2, RUN = 16;
    __device__ static int run_start(int u, int r) { return 32 * u + 16 * r; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const long blk = row * nu + u;
        const float d = half_at(P[0] + 4 * blk), m = half_at(P[0] + 4 * blk + 2);
        u32 hl[4], hh[4];
        fifth_bits(*(const u32*)(P[1] + 4 * blk), hl, hh);
        nibbles32(*(const uint4*)(P[2] + 16 * blk), hl, hh, q);
        a[0] = a[1] = d;
        b[0] = b[1] = m;
    }
};

struct Q8_0 {  // planes: d (2 B), qs (32 B)
    static constexpr int RUNS = 1, RUN = 32;
    __device__ static int run_start(int u, int r) { return 32 * u; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const long blk = row * nu + u;
        const float d = half_at(P[0] + 2 * blk);
        const uint4* p = (const uint4*)(P[1] + 32 * blk);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const uint4 v = p[h];
            const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int k = 0; k < 4; k++) q[16 * h + 4 * i + k] = byte_f(w[i] ^ 0x80808080u, k);  // q + 128
        }
        a[0] = d;
        b[0] = -128.f * d;
    }
};

// Q4_K/Q5_K: 8 sub-blocks of 32 with six-bit scales and mins packed in the
// 12 bytes after d, dmin (head words 1..3 = lo, mid, hi): scales 0-3 are lo's
// low six bits, mins 0-3 mid's; scales/mins 4-7 take their low nibbles from hi
// and their top two bits from lo's/mid's. Word ops: a run-time byte index
// into the head would put it in local memory.
__device__ __forceinline__ float byte_at(u32 w, int k) { return (float)((w >> (8 * k)) & 0xFF); }

__device__ __forceinline__ void k4_apply(const uint4 head, int j, float* a, float* b) {
    const float d = __half2float(__ushort_as_half((unsigned short)(head.x & 0xFFFF)));
    const float dmin = __half2float(__ushort_as_half((unsigned short)(head.x >> 16)));
    const u32 lo = head.y, mid = head.z, hi = head.w;
    const u32 sc = j < 2 ? lo & 0x3F3F3F3Fu : (hi & 0x0F0F0F0Fu) | ((lo >> 2) & 0x30303030u);
    const u32 mn = j < 2 ? mid & 0x3F3F3F3Fu : ((hi >> 4) & 0x0F0F0F0Fu) | ((mid >> 2) & 0x30303030u);
    const int k = (2 * j) & 3;  // sub-blocks 2j and 2j+1 are bytes k, k+1 of these words
    a[0] = d * byte_at(sc, k);
    b[0] = -(dmin * byte_at(mn, k));
    a[1] = d * byte_at(sc, k + 1);
    b[1] = -(dmin * byte_at(mn, k + 1));
}

// unit u of a K-quant row: super-block u/8, pair of sub-blocks j = (u/2)%4, half h = u%2;
// run 0: elements 64j + 16h + [0,16) (sub-block 2j), run 1: +32 (sub-block 2j+1)
struct KUnit {
    long blk;
    int j, h;
    __device__ KUnit(long row, int nu, int u) : blk(row * (nu >> 3) + (u >> 3)), j((u >> 1) & 3), h(u & 1) {}
};

struct Q4_K {  // planes: d|dmin|scales (16 B), qs (128 B)
    static constexpr int RUNS = 2, RUN = 16;
    __device__ static int run_start(int u, int r) { return 256 * (u >> 3) + 64 * ((u >> 1) & 3) + 16 * (u & 1) + 32 * r; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const KUnit k(row, nu, u);
        const uint4 head = *(const uint4*)(P[0] + 16 * k.blk);
        const u32 z[4] = {0, 0, 0, 0};
        nibbles32(*(const uint4*)(P[1] + 128 * k.blk + 32 * k.j + 16 * k.h), z, z, q);
        k4_apply(head, k.j, a, b);
    }
};

struct Q5_K {  // planes: d|dmin|scales (16 B), qh (32 B), qs (128 B)
    static constexpr int RUNS = 2, RUN = 16;
    __device__ static int run_start(int u, int r) { return Q4_K::run_start(u, r); }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const KUnit k(row, nu, u);
        const uint4 head = *(const uint4*)(P[0] + 16 * k.blk);
        // bit s of qh byte l is the fifth bit of element 32s + l: here bytes 16h.., bits 2j, 2j+1
        const uint4 qh = *(const uint4*)(P[1] + 32 * k.blk + 16 * k.h);
        const u32 hw[4] = {qh.x, qh.y, qh.z, qh.w};
        u32 hl[4], hh[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            hl[i] = ((hw[i] >> (2 * k.j)) & 0x01010101u) << 4;
            hh[i] = ((hw[i] >> (2 * k.j + 1)) & 0x01010101u) << 4;
        }
        nibbles32(*(const uint4*)(P[2] + 128 * k.blk + 32 * k.j + 16 * k.h), hl, hh, q);
        k4_apply(head, k.j, a, b);
    }
};

// Q6_K: unit u = super-block u/8, half s = (u/4)%2, l in [8(u%4), +8); run r (0..3)
// is elements 128s + 32r + l: low/high nibbles of ql[64s + l (+32)], bits 2r.. of qh[32s + l]
struct Q6_K {  // planes: ql (128 B), qh (64 B), scales (16 B), d (2 B)
    static constexpr int RUNS = 4, RUN = 8;
    __device__ static int run_start(int u, int r) { return 256 * (u >> 3) + 128 * ((u >> 2) & 1) + 32 * r + 8 * (u & 3); }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const long blk = row * (nu >> 3) + (u >> 3);
        const int s = (u >> 2) & 1, l = 8 * (u & 3);
        const uint2 lo = *(const uint2*)(P[0] + 128 * blk + 64 * s + l);
        const uint2 hi = *(const uint2*)(P[0] + 128 * blk + 64 * s + 32 + l);
        const uint2 qh = *(const uint2*)(P[1] + 64 * blk + 32 * s + l);
        const u32 lw[2] = {lo.x, lo.y}, hw[2] = {hi.x, hi.y}, qw[2] = {qh.x, qh.y};
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const u32 v[4] = {
                (lw[i] & 0x0F0F0F0Fu) | ((qw[i] & 0x03030303u) << 4),
                (hw[i] & 0x0F0F0F0Fu) | (((qw[i] >> 2) & 0x03030303u) << 4),
                ((lw[i] >> 4) & 0x0F0F0F0Fu) | (((qw[i] >> 4) & 0x03030303u) << 4),
                ((hw[i] >> 4) & 0x0F0F0F0Fu) | (((qw[i] >> 6) & 0x03030303u) << 4)};
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int k = 0; k < 4; k++) q[8 * r + 4 * i + k] = byte_f(v[r], k);
        }
        const signed char* sc = (const signed char*)(P[2] + 16 * blk);
        const float d = half_at(P[3] + 2 * blk);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            a[r] = d * (float)sc[8 * s + 2 * r + (l >> 4)];
            b[r] = -32.f * a[r];
        }
    }
};

struct F16 {  // plane: the row's halfs (64 B a unit); other types are converted to this at upload
    static constexpr int RUNS = 1, RUN = 32;
    __device__ static int run_start(int u, int r) { return 32 * u; }
    __device__ static void decode(const u8* const* P, long row, int nu, int u, float* q, float* a, float* b) {
        const uint4* p = (const uint4*)(P[0] + 64 * (row * nu + u));
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint4 v = p[i];
            const __half2* h = (const __half2*)&v;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const float2 f = __half22float2(h[k]);
                q[8 * i + 2 * k] = f.x;
                q[8 * i + 2 * k + 1] = f.y;
            }
        }
        a[0] = 1.f;
        b[0] = 0.f;
    }
};
