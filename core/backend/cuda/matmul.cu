// Matrix-vector products on quantized planes (decode and short chunks) and
// dequantization to F16 (the tensor-core path of a long prefill).
#include <cuda_fp16.h>
#include "quant_blocks.cuh"

// y[t, row] = W[row] . x[t] for t = blockIdx.y. A warp owns R rows and walks
// their units lane by lane, U units per lane per step (their loads in flight
// together); each x unit is read once for the R rows. Every t runs the same
// instructions as a one-token call, so the rows of a short chunk (a
// speculative verify step) equal their decode steps bit for bit.
template <class B, int R>
__device__ __forceinline__ void gemv_unit(const u8* const* P, int rows, int row0, int nu, int u,
                                          const float* __restrict__ xt, float* acc) {
    float xv[32], xs[B::RUNS];
#pragma unroll
    for (int r = 0; r < B::RUNS; r++) {
        const float4* xp = (const float4*)(xt + B::run_start(u, r));
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < B::RUN / 4; i++) {
            const float4 v = __ldg(xp + i);
            xv[r * B::RUN + 4 * i] = v.x;
            xv[r * B::RUN + 4 * i + 1] = v.y;
            xv[r * B::RUN + 4 * i + 2] = v.z;
            xv[r * B::RUN + 4 * i + 3] = v.w;
            s += (v.x + v.y) + (v.z + v.w);
        }
        xs[r] = s;
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
        const int row = row0 + i;
        if (row < rows) {
            float q[32], a[B::RUNS], b[B::RUNS];
            B::decode(P, row, nu, u, q, a, b);
            float s = 0.f;
#pragma unroll
            for (int r = 0; r < B::RUNS; r++) {
                float d0 = 0.f, d1 = 0.f;  // two chains: half the FMA latency in a row
#pragma unroll
                for (int k = 0; k < B::RUN; k += 2) {
                    d0 = fmaf(q[r * B::RUN + k], xv[r * B::RUN + k], d0);
                    d1 = fmaf(q[r * B::RUN + k + 1], xv[r * B::RUN + k + 1], d1);
                }
                s = fmaf(a[r], d0 + d1, fmaf(b[r], xs[r], s));
            }
            acc[i] += s;
        }
    }
}

// Block of 4 warps: 4/KS row groups of R rows, each group's units split
// over KS warps (few rows: more warps in flight), partial sums added in a
// fixed order through shared memory.
template <class B, int R, int U, int KS>
__global__ void __launch_bounds__(128) gemv(const u8* p0, const u8* p1, const u8* p2, const u8* p3,
                                            int rows, int cols, const float* __restrict__ x, int ldx,
                                            float* __restrict__ y, int ldy) {
    __shared__ float part[4][R];
    const u8* P[4] = {p0, p1, p2, p3};
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int ks = w % KS;
    const int row0 = (blockIdx.x * (4 / KS) + w / KS) * R;
    const float* xt = x + (long)blockIdx.y * ldx;
    const int nu = cols >> 5;
    float acc[R];
#pragma unroll
    for (int i = 0; i < R; i++) acc[i] = 0.f;
    if (row0 < rows) {
        for (int u = lane + 32 * ks; u < nu; u += 32 * KS * U) {
#pragma unroll
            for (int k = 0; k < U; k++)
                if (u + 32 * KS * k < nu) gemv_unit<B, R>(P, rows, row0, nu, u + 32 * KS * k, xt, acc);
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

// out[row, :] = W[row, :] as F16, one unit (32 weights) per thread
template <class B>
__global__ void dequant_f16(const u8* p0, const u8* p1, const u8* p2, const u8* p3, int rows, int cols,
                            __half* __restrict__ out) {
    const u8* P[4] = {p0, p1, p2, p3};
    const int nu = cols >> 5;
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * nu) return;
    const long row = idx / nu;
    const int u = (int)(idx - row * nu);
    float q[32], a[B::RUNS], b[B::RUNS];
    B::decode(P, row, nu, u, q, a, b);
#pragma unroll
    for (int r = 0; r < B::RUNS; r++) {
        __half2* o = (__half2*)(out + row * cols + B::run_start(u, r));
#pragma unroll
        for (int k = 0; k < B::RUN / 2; k++)
            o[k] = __floats2half2_rn(fmaf(a[r], q[r * B::RUN + 2 * k], b[r]), fmaf(a[r], q[r * B::RUN + 2 * k + 1], b[r]));
    }
}

// x (T, cols) float32 with row stride ldx -> F16 (T, cols) for the GEMM, one
// block per row. A row whose largest value would overflow F16 is scaled by a
// power of two (exact), and scale[t] says by what; scale_rows undoes it.
extern "C" __global__ void to_f16_rows(const float* __restrict__ x, int ldx, int cols, __half* __restrict__ out,
                                       float* __restrict__ scale) {
    const float* xr = x + (long)blockIdx.x * ldx;
    float m = 0.f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, fabsf(xr[i]));
    __shared__ float red[32];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        if (threadIdx.x == 0) red[0] = m;
    }
    __syncthreads();
    m = red[0];
    float s = 1.f;
    while (m * s >= 16384.f) s *= 0.5f;  // headroom for the sums the GEMM does in F32 anyway
    for (int i = threadIdx.x; i < cols; i += blockDim.x) out[(long)blockIdx.x * cols + i] = __float2half_rn(xr[i] * s);
    if (threadIdx.x == 0) scale[blockIdx.x] = 1.f / s;
}

// y[t, :n] *= scale[t]: undoes to_f16_rows' scaling on a GEMM's output
extern "C" __global__ void scale_rows(float* __restrict__ y, int ldy, int T, int n, const float* __restrict__ scale) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)T * n) return;
    const long t = idx / n;
    const float s = scale[t];
    if (s != 1.f) y[t * ldy + (idx - t * n)] *= s;
}
