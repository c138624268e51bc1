// Decode GEMV of the k-quants (Q4_K, Q5_K, Q6_K) in integers: the activation
// row is first quantized in two 8-bit levels per group of 32 (quantize_x), as
// the CPU kernels do (core/backend/csrc/kernels/README.md), and each weight
// word meets it in dp4a. Float GEMV (matmul.cu) spent ~8 instructions a byte
// turning nibbles into floats; this spends ~2.5, and reads 2 bytes of
// activation per weight instead of 4.
//
// Activation row, xq + t * ldq (act_q8.py builds the same bytes in NumPy):
//   q1 [cols] int8 | q2 [cols] int8 | per group of 32: float2 {d2, S}
// with x ~= d2 * (256 * q1 + q2) and S = sum over the group of 256 * q1 + q2.
// A group's dot with integer weights w is then 256 * dp4a(w, q1) + dp4a(w, q2),
// exact in int32; floats enter once per group.
#include <cuda_fp16.h>

typedef unsigned char u8;
typedef unsigned int u32;

// One warp per group of 32 (lane = element): d1 = amax / 127, q1 = rint(x / d1),
// q2 = rint((x - d1 * q1) / d2) clamped to +-127 with d2 = d1 / 256. Every
// step an explicitly rounded IEEE op (no contraction), so NumPy gets the same
// bytes. grid (ceil(groups / 8), T), block 256.
extern "C" __global__ void quantize_x(const float* __restrict__ x, int ldx, int cols, u8* __restrict__ xq, int ldq) {
    const int g = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (g >= (cols >> 5)) return;  // whole warps
    const float v = x[(long)blockIdx.y * ldx + 32 * g + lane];
    float m = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    const float d1 = __fdiv_rn(m, 127.f), d2 = __fmul_rn(d1, 0.00390625f);
    int q1 = 0, q2 = 0;
    if (d1 > 0.f) {
        const float a = rintf(__fdiv_rn(v, d1));
        q1 = (int)a;
        q2 = (int)fminf(127.f, fmaxf(-127.f, rintf(__fdiv_rn(__fsub_rn(v, __fmul_rn(d1, a)), d2))));
    }
    int s = 256 * q1 + q2;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    u8* row = xq + (long)blockIdx.y * ldq;
    row[32 * g + lane] = (u8)(signed char)q1;
    row[cols + 32 * g + lane] = (u8)(signed char)q2;
    if (lane == 0) ((float2*)(row + 2 * cols))[g] = make_float2(d2, (float)s);
}

__device__ __forceinline__ int dot4(const uint4 w, const uint4 x, int acc) {
    acc = __dp4a((int)w.x, (int)x.x, acc);
    acc = __dp4a((int)w.y, (int)x.y, acc);
    acc = __dp4a((int)w.z, (int)x.z, acc);
    return __dp4a((int)w.w, (int)x.w, acc);
}

// 256 * (w . q1) + (w . q2): one group's (or half group's) exact integer dot
__device__ __forceinline__ int dot_2level(const uint4 w0, const uint4 w1, const uint4 a0, const uint4 a1,
                                          const uint4 b0, const uint4 b1) {
    return 256 * dot4(w1, a1, dot4(w0, a0, 0)) + dot4(w1, b1, dot4(w0, b0, 0));
}

// ((v >> shift) & mask) << up, word by word
__device__ __forceinline__ uint4 map4(const uint4 v, u32 mask, int shift, int up = 0) {
    return make_uint4(((v.x >> shift) & mask) << up, ((v.y >> shift) & mask) << up, ((v.z >> shift) & mask) << up,
                      ((v.w >> shift) & mask) << up);
}

__device__ __forceinline__ uint4 or4(const uint4 a, const uint4 b) {
    return make_uint4(a.x | b.x, a.y | b.y, a.z | b.z, a.w | b.w);
}

// The activation side of a unit of 64 consecutive elements 64u.. (two groups):
// Q4_K / Q5_K units are sub-block pairs, which are exactly that.
struct XPair {
    uint4 a[4], b[4];  // q1, q2 of the 64 elements
    float4 ds;         // d2, S of group 2u; d2, S of group 2u + 1
    __device__ XPair(const u8* xr, int cols, int u) {
        const uint4* p1 = (const uint4*)(xr + 64 * u);
        const uint4* p2 = (const uint4*)(xr + cols + 64 * u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            a[i] = __ldg(p1 + i);
            b[i] = __ldg(p2 + i);
        }
        ds = __ldg((const float4*)(xr + 2 * cols) + u);
    }
};

// Q4_K/Q5_K six-bit scales and mins of sub-blocks 2j, 2j+1 from the 12 bytes
// after d, dmin (head words lo, mid, hi); word ops, as k4_apply in quant_blocks.cuh
__device__ __forceinline__ void k4_scales(const uint4 head, int j, int* sc, int* mn) {
    const u32 lo = head.y, mid = head.z, hi = head.w;
    const u32 s = j < 2 ? lo & 0x3F3F3F3Fu : (hi & 0x0F0F0F0Fu) | ((lo >> 2) & 0x30303030u);
    const u32 m = j < 2 ? mid & 0x3F3F3F3Fu : ((hi >> 4) & 0x0F0F0F0Fu) | ((mid >> 2) & 0x30303030u);
    const int k = 8 * ((2 * j) & 3);
    sc[0] = (s >> k) & 0xFF;
    sc[1] = (s >> (k + 8)) & 0xFF;
    mn[0] = (m >> k) & 0xFF;
    mn[1] = (m >> (k + 8)) & 0xFF;
}

// sum over the two sub-blocks: d * sc * d2 * I - dmin * m * d2 * S, in one fixed order
__device__ __forceinline__ float k4_finish(const uint4 head, int j, const float4 ds, int i0, int i1) {
    int sc[2], mn[2];
    k4_scales(head, j, sc, mn);
    const float d = __half2float(__ushort_as_half((unsigned short)(head.x & 0xFFFF)));
    const float dmin = __half2float(__ushort_as_half((unsigned short)(head.x >> 16)));
    const float dot = fmaf((float)sc[1] * ds.z, (float)i1, (float)sc[0] * ds.x * (float)i0);
    const float off = fmaf((float)mn[1] * ds.z, ds.w, (float)mn[0] * ds.x * ds.y);
    return fmaf(d, dot, -dmin * off);
}

// unit u = super-block u/4, sub-block pair j = u%4: 32 qs bytes at 32j, low
// nibbles sub-block 2j (elements 64j + 0..31), high nibbles 2j+1 (+32..63)
struct Q4_K {  // planes: d|dmin|scales (16 B), qs (128 B)
    typedef XPair X;
    __device__ static float dot(const u8* const* P, long row, int nu, int u, const X& x) {
        const long blk = row * (nu >> 2) + (u >> 2);
        const int j = u & 3;
        const uint4 head = __ldg((const uint4*)(P[0] + 16 * blk));
        const uint4* qs = (const uint4*)(P[1] + 128 * blk + 32 * j);
        const uint4 w0 = __ldg(qs), w1 = __ldg(qs + 1);
        const int i0 = dot_2level(map4(w0, 0x0F0F0F0Fu, 0), map4(w1, 0x0F0F0F0Fu, 0), x.a[0], x.a[1], x.b[0], x.b[1]);
        const int i1 = dot_2level(map4(w0, 0x0F0F0F0Fu, 4), map4(w1, 0x0F0F0F0Fu, 4), x.a[2], x.a[3], x.b[2], x.b[3]);
        return k4_finish(head, j, x.ds, i0, i1);
    }
};

// as Q4_K with the fifth bits: bit s of qh byte l is that of element 32s + l
struct Q5_K {  // planes: d|dmin|scales (16 B), qh (32 B), qs (128 B)
    typedef XPair X;
    __device__ static float dot(const u8* const* P, long row, int nu, int u, const X& x) {
        const long blk = row * (nu >> 2) + (u >> 2);
        const int j = u & 3;
        const uint4 head = __ldg((const uint4*)(P[0] + 16 * blk));
        const uint4* qh = (const uint4*)(P[1] + 32 * blk);
        const uint4 h0 = __ldg(qh), h1 = __ldg(qh + 1);
        const uint4* qs = (const uint4*)(P[2] + 128 * blk + 32 * j);
        const uint4 w0 = __ldg(qs), w1 = __ldg(qs + 1);
        const int i0 = dot_2level(or4(map4(w0, 0x0F0F0F0Fu, 0), map4(h0, 0x01010101u, 2 * j, 4)),
                                  or4(map4(w1, 0x0F0F0F0Fu, 0), map4(h1, 0x01010101u, 2 * j, 4)),
                                  x.a[0], x.a[1], x.b[0], x.b[1]);
        const int i1 = dot_2level(or4(map4(w0, 0x0F0F0F0Fu, 4), map4(h0, 0x01010101u, 2 * j + 1, 4)),
                                  or4(map4(w1, 0x0F0F0F0Fu, 4), map4(h1, 0x01010101u, 2 * j + 1, 4)),
                                  x.a[2], x.a[3], x.b[2], x.b[3]);
        return k4_finish(head, j, x.ds, i0, i1);
    }
};

// The activation side of a Q6_K unit: elements 32r + 16h + [0,16) of the 128
// from 128v (v = u/2, h = u%2) for r = 0..3: half of each of groups 4v + r
struct XHalves {
    uint4 a[4], b[4];  // q1, q2 of the 16 elements of each group
    float d2[4];
    __device__ XHalves(const u8* xr, int cols, int u) {
        const long off = 128 * (u >> 1) + 16 * (u & 1);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            a[r] = __ldg((const uint4*)(xr + off + 32 * r));
            b[r] = __ldg((const uint4*)(xr + cols + off + 32 * r));
        }
        const float4* ds = (const float4*)(xr + 2 * cols) + 2 * (u >> 1);
        const float4 e = __ldg(ds), f = __ldg(ds + 1);
        d2[0] = e.x;
        d2[1] = e.z;
        d2[2] = f.x;
        d2[3] = f.z;
    }
};

// bytes 0..63 -> bytes - 32 as signed bytes: bit 5 flipped, and bits 6, 7 set
// where bit 5 was clear (no carries between bytes)
__device__ __forceinline__ u32 centre32(u32 v) { return (v ^ 0x20202020u) | ((~v & 0x20202020u) * 6u); }

__device__ __forceinline__ uint4 centre32x4(const uint4 v) {
    return make_uint4(centre32(v.x), centre32(v.y), centre32(v.z), centre32(v.w));
}

// signed byte k of w
__device__ __forceinline__ int sbyte(u32 w, int k) { return (int)(w << (24 - 8 * k)) >> 24; }

// unit u = super-block u/4, half s = (u/2)%2, l in [16(u%2), +16): element
// 128s + 32r + l is the low (r = 0, 1) or high (r = 2, 3) nibble of
// ql[64s + 32(r%2) + l] with bits 2r.. of qh[32s + l]; its scale sc[8s + 2r + l/16]
struct Q6_K {  // planes: ql (128 B), qh (64 B), scales (16 B), d (2 B)
    typedef XHalves X;
    __device__ static float dot(const u8* const* P, long row, int nu, int u, const X& x) {
        const long blk = row * (nu >> 2) + (u >> 2);
        const int s = (u >> 1) & 1, h = u & 1;
        const uint4 ql0 = __ldg((const uint4*)(P[0] + 128 * blk + 64 * s + 16 * h));
        const uint4 ql1 = __ldg((const uint4*)(P[0] + 128 * blk + 64 * s + 32 + 16 * h));
        const uint4 qh = __ldg((const uint4*)(P[1] + 64 * blk + 32 * s + 16 * h));
        const uint2 sc = __ldg((const uint2*)(P[2] + 16 * blk + 8 * s));
        const float d = __half2float(__ldg((const __half*)(P[3] + 2 * blk)));
        const uint4 v[4] = {or4(map4(ql0, 0x0F0F0F0Fu, 0), map4(qh, 0x03030303u, 0, 4)),
                            or4(map4(ql1, 0x0F0F0F0Fu, 0), map4(qh, 0x03030303u, 2, 4)),
                            or4(map4(ql0, 0x0F0F0F0Fu, 4), map4(qh, 0x03030303u, 4, 4)),
                            or4(map4(ql1, 0x0F0F0F0Fu, 4), map4(qh, 0x03030303u, 6, 4))};
        const int scale[4] = {sbyte(sc.x, h), sbyte(sc.x, 2 + h), sbyte(sc.y, h), sbyte(sc.y, 2 + h)};
        float sum = 0.f;
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const uint4 w = centre32x4(v[r]);
            const int I = 256 * dot4(w, x.a[r], 0) + dot4(w, x.b[r], 0);
            sum = fmaf((float)scale[r] * x.d2[r], (float)I, sum);
        }
        return d * sum;
    }
};

// y[t, row] = W[row] . x[t] for t = blockIdx.y, x[t] quantized at xq + t * ldq.
// As gemv in matmul.cu: a warp owns R rows and walks their units (64 weights)
// lane by lane, U units a lane at once, KS warps sharing a row's units; the
// activation unit is loaded once for the R rows. Every t runs the same
// instructions as a one-token call: a short chunk's rows equal its decode
// steps bit for bit.
template <class B, int R, int U, int KS>
__global__ void __launch_bounds__(128) gemv_q8(const u8* p0, const u8* p1, const u8* p2, const u8* p3, int rows,
                                               int cols, const u8* __restrict__ xq, int ldq, float* __restrict__ y,
                                               int ldy) {
    __shared__ float part[4][R];
    const u8* P[4] = {p0, p1, p2, p3};
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int ks = w % KS;
    const int row0 = (blockIdx.x * (4 / KS) + w / KS) * R;
    const u8* xr = xq + (long)blockIdx.y * ldq;
    const int nu = cols >> 6;
    float acc[R];
#pragma unroll
    for (int i = 0; i < R; i++) acc[i] = 0.f;
    if (row0 < rows) {
        for (int u = lane + 32 * ks; u < nu; u += 32 * KS * U) {
#pragma unroll
            for (int k = 0; k < U; k++) {
                const int uk = u + 32 * KS * k;
                if (uk < nu) {
                    const typename B::X xv(xr, cols, uk);
#pragma unroll
                    for (int i = 0; i < R; i++)
                        if (row0 + i < rows) acc[i] += B::dot(P, row0 + i, nu, uk, xv);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], o);
    }
    if (KS > 1) {
        if (lane == 0) {
#pragma unroll
            for (int i = 0; i < R; i++) part[w][i] = acc[i];
        }
        __syncthreads();
        if (ks != 0) return;
#pragma unroll
        for (int i = 0; i < R; i++) {
            float v = part[w][i];
#pragma unroll
            for (int k = 1; k < KS; k++) v += part[w + k][i];
            acc[i] = v;
        }
    }
#pragma unroll
    for (int i = 0; i < R; i++)
        if (lane == 0 && row0 + i < rows) y[(long)blockIdx.y * ldy + row0 + i] = acc[i];
}
