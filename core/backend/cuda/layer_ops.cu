// The elementwise and attention steps of a layer, fused so that a decode step
// is a handful of launches per layer (captured in one CUDA graph).
// Positions come from pos[0] in device memory: a captured graph replays for
// every position without being captured again.
#include <cuda_fp16.h>

#define NEG_INF (-__int_as_float(0x7f800000))

// sum of v over the block (blockDim.x a multiple of 32, at most 1024)
__device__ __forceinline__ float block_sum(float v, float* red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();  // red may still be read by a previous call
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) red[32] = v;
    }
    __syncthreads();
    return red[32];
}

// One row per block (dynamic shared memory: n floats). With add: the residual
// x += a (a first RMS-normed by post_w when given, Gemma's post-norms).
// Then h = RMS-norm(x) * w. As forward.py: ms = sum(x^2)/n + eps, x / sqrt(ms) * w.
extern "C" __global__ void residual_norm(float* __restrict__ x, const float* __restrict__ a, int lda,
                                         const float* __restrict__ post_w, const float* __restrict__ w,
                                         float* __restrict__ h, int n, float eps, int add) {
    extern __shared__ float row[];
    __shared__ float red[33];
    float* xr = x + (long)blockIdx.x * n;
    const float* ar = a + (long)blockIdx.x * lda;
    float inv_a = 1.f;
    if (add && post_w) {
        float ss = 0.f;
#pragma unroll 4
        for (int i = threadIdx.x; i < n; i += blockDim.x) ss += ar[i] * ar[i];
        inv_a = 1.f / sqrtf(block_sum(ss, red) * (1.f / n) + eps);
    }
    float ss = 0.f;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = xr[i];
        if (add) {
            v += post_w ? ar[i] * inv_a * post_w[i] : ar[i];
            xr[i] = v;
        }
        row[i] = v;
        ss += v * v;
    }
    const float inv = 1.f / sqrtf(block_sum(ss, red) * (1.f / n) + eps);
    float* hr = h + (long)blockIdx.x * n;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += blockDim.x) hr[i] = row[i] * inv * w[i];
}

// Q|K|V rows (T, nh*dk + nkv*dk + nkv*dv) after the product: bias, the per-head
// Q/K norm, RoPE on adjacent pairs (neox heads were permuted at load), Q's
// scale; Q to q_out (T, nh*dk), K and V into the F16 cache at pos[0] + t.
// Block (t, head) over nh Q heads, then nkv K heads, then nkv V heads.
extern "C" __global__ void qkv_post(const float* __restrict__ qkv, int ldqkv, const float* __restrict__ bias,
                                    const float* __restrict__ q_norm, const float* __restrict__ k_norm,
                                    const double* __restrict__ inv_freq, int n_rot, const int* __restrict__ pos,
                                    float q_scale, float eps, int nh, int nkv, int dk, int dv,
                                    float* __restrict__ q_out, __half* __restrict__ kc, __half* __restrict__ vc,
                                    int cap) {
    __shared__ float red[33];
    const int t = blockIdx.x, hd = blockIdx.y;
    const int p = pos[0] + t;
    const bool is_q = hd < nh, is_k = !is_q && hd < nh + nkv;
    const int d = (is_q || is_k) ? dk : dv;
    const int col = is_q ? hd * dk : is_k ? nh * dk + (hd - nh) * dk : (nh + nkv) * dk + (hd - nh - nkv) * dv;
    const float* src = qkv + (long)t * ldqkv + col;
    if (!is_q && !is_k) {
        __half* dst = vc + ((long)(hd - nh - nkv) * cap + p) * dv;
        for (int i = threadIdx.x; i < d; i += blockDim.x) dst[i] = __float2half_rn(src[i] + (bias ? bias[col + i] : 0.f));
        return;
    }
    const float* nw = is_q ? q_norm : k_norm;
    float inv = 1.f;
    if (nw) {
        float ss = 0.f;
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
            const float v = src[i] + (bias ? bias[col + i] : 0.f);
            ss += v * v;
        }
        inv = 1.f / sqrtf(block_sum(ss, red) * (1.f / d) + eps);
    }
    for (int i = threadIdx.x; 2 * i < d; i += blockDim.x) {
        float x0 = src[2 * i] + (bias ? bias[col + 2 * i] : 0.f);
        float x1 = src[2 * i + 1] + (bias ? bias[col + 2 * i + 1] : 0.f);
        if (nw) {
            x0 = x0 * inv * nw[2 * i];
            x1 = x1 * inv * nw[2 * i + 1];
        }
        if (2 * i < n_rot) {
            double sd, cd;
            sincos((double)p * inv_freq[i], &sd, &cd);
            const float c = (float)cd, s = (float)sd;
            const float r0 = x0 * c - x1 * s, r1 = x0 * s + x1 * c;
            x0 = r0;
            x1 = r1;
        }
        if (is_q) {
            float* dst = q_out + ((long)t * nh + hd) * dk;
            dst[2 * i] = x0 * q_scale;
            dst[2 * i + 1] = x1 * q_scale;
        } else {
            __half2* dst = (__half2*)(kc + ((long)(hd - nh) * cap + p) * dk);
            dst[i] = __floats2half2_rn(x0, x1);
        }
    }
}

// out[t, i] = act(gate[t, i]) * up[t, i] with gate|up rows (T, 2*n_ff):
// SiLU, or GELU's tanh form (Gemma), as forward.py
extern "C" __global__ void act_mul(const float* __restrict__ gu, int n_ff, int T, int gelu, float* __restrict__ out) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)T * n_ff) return;
    const long t = idx / n_ff, i = idx - t * n_ff;
    const float g = gu[t * 2 * n_ff + i], u = gu[t * 2 * n_ff + n_ff + i];
    float a;
    if (gelu) {
        const float c = 0.7978845608028654f;  // sqrt(2/pi)
        a = 0.5f * g * (1.f + tanhf(c * (g + 0.044715f * g * g * g)));
    } else {
        a = g / (1.f + expf(-g));
    }
    out[idx] = a * u;
}

// Attention of query t (at p = pos[0] + t), head h, over split s of its keys
// lo..p (lo = p - window + 1 on sliding-window layers), keys cut into S equal
// splits so a decode step fills the GPU; split results are (max, sum, o)
// merged by attend_combine. Each of 4 warps takes every 4th group of KB keys;
// lane i holds q, o elements i, i+32, ... No score matrix is stored. A query's
// work depends only on its own position, so the rows of a chunk equal their
// decode steps bit for bit.
constexpr int KB = 4;

template <int NK, int NV>
__global__ void __launch_bounds__(128) attend_part(const float* __restrict__ q, const __half* __restrict__ kc,
                                                   const __half* __restrict__ vc, int cap, const int* __restrict__ pos,
                                                   int nh, int nkv, int window, float softcap, int S,
                                                   float* __restrict__ part_o, float* __restrict__ part_ml) {
    constexpr int DK = 32 * NK, DV = 32 * NV;
    __shared__ float sm[4], sl[4], so[4][DV];
    const int h = blockIdx.x, t = blockIdx.y, s = blockIdx.z;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int p = pos[0] + t;
    const int lo = window > 0 ? max(0, p - window + 1) : 0;
    const int chunk = (p - lo + 1 + S - 1) / S;
    const int k0 = lo + s * chunk, k1 = min(p + 1, k0 + chunk);
    const int kvh = h / (nh / nkv);
    const float* qh = q + ((long)t * nh + h) * DK;
    float qv[NK];
#pragma unroll
    for (int i = 0; i < NK; i++) qv[i] = qh[lane + 32 * i];
    const __half* K = kc + (long)kvh * cap * DK;
    const __half* V = vc + (long)kvh * cap * DV;
    float m = NEG_INF, l = 0.f, o[NV];
#pragma unroll
    for (int i = 0; i < NV; i++) o[i] = 0.f;
    for (int j0 = k0 + w * KB; j0 < k1; j0 += 4 * KB) {
        float sc[KB];
#pragma unroll
        for (int b = 0; b < KB; b++) {
            const int j = min(j0 + b, k1 - 1);  // past the end: a repeat, masked below
            const __half* kr = K + (long)j * DK;
            float d = 0.f;
#pragma unroll
            for (int i = 0; i < NK; i++) d = fmaf(qv[i], __half2float(kr[lane + 32 * i]), d);
            sc[b] = d;
        }
        float mn = m;
#pragma unroll
        for (int b = 0; b < KB; b++) {
            float d = sc[b];
#pragma unroll
            for (int o2 = 16; o2 > 0; o2 >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o2);
            if (softcap > 0.f) d = tanhf(d / softcap) * softcap;
            sc[b] = j0 + b < k1 ? d : NEG_INF;
            mn = fmaxf(mn, sc[b]);
        }
        const float c = m == NEG_INF ? 0.f : expf(m - mn);
        l *= c;
#pragma unroll
        for (int i = 0; i < NV; i++) o[i] *= c;
#pragma unroll
        for (int b = 0; b < KB; b++) {
            if (j0 + b < k1) {
                const float e = expf(sc[b] - mn);
                l += e;
                const __half* vr = V + (long)(j0 + b) * DV;
#pragma unroll
                for (int i = 0; i < NV; i++) o[i] = fmaf(e, __half2float(vr[lane + 32 * i]), o[i]);
            }
        }
        m = mn;
    }
    if (lane == 0) {
        sm[w] = m;
        sl[w] = l;
    }
#pragma unroll
    for (int i = 0; i < NV; i++) so[w][lane + 32 * i] = o[i];
    __syncthreads();
    if (w != 0) return;
    float M = fmaxf(fmaxf(sm[0], sm[1]), fmaxf(sm[2], sm[3]));
    float f[4], L = 0.f;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        f[k] = sm[k] == NEG_INF ? 0.f : expf(sm[k] - M);
        L += sl[k] * f[k];
    }
    const long slot = ((long)t * nh + h) * S + s;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int e = lane + 32 * i;
        part_o[slot * DV + e] = so[0][e] * f[0] + so[1][e] * f[1] + so[2][e] * f[2] + so[3][e] * f[3];
    }
    if (lane == 0) {
        part_ml[2 * slot] = M;
        part_ml[2 * slot + 1] = L;
    }
}

// out[t, h*dv + e] = the S splits of (t, h) merged; block (h, t), thread e
extern "C" __global__ void attend_combine(const float* __restrict__ part_o, const float* __restrict__ part_ml,
                                          int nh, int dv, int S, float* __restrict__ out) {
    const int h = blockIdx.x, t = blockIdx.y;
    const long base = ((long)t * nh + h) * S;
    float M = NEG_INF;
    for (int s = 0; s < S; s++) M = fmaxf(M, part_ml[2 * (base + s)]);
    for (int e = threadIdx.x; e < dv; e += blockDim.x) {
        float L = 0.f, acc = 0.f;
        for (int s = 0; s < S; s++) {
            const float ms = part_ml[2 * (base + s)];
            if (ms == NEG_INF) continue;
            const float f = expf(ms - M);
            L += part_ml[2 * (base + s) + 1] * f;
            acc += part_o[(base + s) * dv + e] * f;
        }
        out[((long)t * nh + h) * dv + e] = acc / L;
    }
}
