// WKV7 forward and backward for rwkv_data.kernels (conventions: kernels/WKV7.md).
//
// Self-contained: no torch headers, so `nvcc -c wkv7.cu` works on its own (CI compiles it for sm_80 and sm_90);
// kernels/csrc/wkv7_op.cpp binds the two launchers for PyTorch.
//
// Compile-time options: WKV_N (head size, default 64, at most 64: one thread per value row), WKV_CHUNK (tokens
// between stored states, default 16), WKV_BF16 (bf16 inputs/outputs; default fp32). All math and every state
// are fp32. Any T: the last chunk may be short.
//
// Layouts: r, w, k, v, a, b, y and their gradients [B, T, H, N] contiguous; s0, sT, ds0, dsT [B, H, N, N] fp32
// (value index, key index); ckpt [B, H, ceil(T/WKV_CHUNK), N, N] and scratch [B, H, WKV_CHUNK, N, N] fp32,
// stored key-major (element (value i, key j) at j * N + i) so that thread i's accesses are coalesced.
//
// Forward: thread i keeps row i of the state in registers; the state before every WKV_CHUNK-th token goes to
// ckpt. Backward: chunks newest first; the states of one chunk are recomputed from its checkpoint into
// scratch (no division by the decay, so any w works), then each token is differentiated with the state
// before it (Sp) and the running gradient dS in shared memory: a row phase (thread = value row) and a column
// phase (thread = key column).

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>

#ifndef WKV_N
#define WKV_N 64
#endif
#ifndef WKV_CHUNK
#define WKV_CHUNK 16
#endif
#if WKV_N > 64 || WKV_N < 1
#error "WKV_N must be in 1..64"
#endif

#ifdef WKV_BF16
typedef __nv_bfloat16 F;
#else
typedef float F;
#endif

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void put(float* p, float x) { *p = x; }
__device__ __forceinline__ void put(__nv_bfloat16* p, float x) { *p = __float2bfloat16(x); }

namespace {

constexpr int N = WKV_N;
constexpr int CH = WKV_CHUNK;

__global__ void __launch_bounds__(WKV_N) wkv7_forward_kernel(
    int T, int H, const F* __restrict__ r, const F* __restrict__ w, const F* __restrict__ k,
    const F* __restrict__ v, const F* __restrict__ a, const F* __restrict__ b, const float* __restrict__ s0,
    F* __restrict__ y, float* __restrict__ sT, float* __restrict__ ckpt) {
  const int h = blockIdx.x, bi = blockIdx.y, i = threadIdx.x;
  const int nck = (T + CH - 1) / CH;
  const int64_t sbase = ((int64_t)bi * H + h) * N * N;
  float* ck = ckpt + ((int64_t)bi * H + h) * nck * N * N;
  __shared__ float sr[N], sd[N], sk[N], sa[N], sb[N];

  float S[N];  // row i of the state: S[j] = state(value i, key j)
#pragma unroll
  for (int j = 0; j < N; j++) S[j] = s0 ? s0[sbase + i * N + j] : 0.f;

  for (int t = 0; t < T; t++) {
    const int64_t idx = (((int64_t)bi * T + t) * H + h) * N + i;
    if (t % CH == 0) {
      float* c = ck + (int64_t)(t / CH) * N * N;
#pragma unroll
      for (int j = 0; j < N; j++) c[j * N + i] = S[j];
    }
    __syncthreads();  // everyone is done reading the previous token's vectors
    sr[i] = to_f(r[idx]);
    sd[i] = expf(-expf(to_f(w[idx])));
    sk[i] = to_f(k[idx]);
    sa[i] = to_f(a[idx]);
    sb[i] = to_f(b[idx]);
    const float vi = to_f(v[idx]);
    __syncthreads();
    float u = 0.f;  // (S_{t-1} a_t)_i
#pragma unroll
    for (int j = 0; j < N; j++) u += S[j] * sa[j];
    float yi = 0.f;
#pragma unroll
    for (int j = 0; j < N; j++) {
      S[j] = S[j] * sd[j] + u * sb[j] + vi * sk[j];
      yi += S[j] * sr[j];
    }
    put(&y[idx], yi);
  }
#pragma unroll
  for (int j = 0; j < N; j++) sT[sbase + i * N + j] = S[j];
}

__global__ void __launch_bounds__(WKV_N) wkv7_backward_kernel(
    int T, int H, const F* __restrict__ r, const F* __restrict__ w, const F* __restrict__ k,
    const F* __restrict__ v, const F* __restrict__ a, const F* __restrict__ b, const F* __restrict__ dy,
    const float* __restrict__ dsT, const float* __restrict__ ckpt, float* __restrict__ scratch,
    F* __restrict__ dr, F* __restrict__ dw, F* __restrict__ dk, F* __restrict__ dv, F* __restrict__ da,
    F* __restrict__ db, float* __restrict__ ds0) {
  const int h = blockIdx.x, bi = blockIdx.y, i = threadIdx.x;
  const int nck = (T + CH - 1) / CH;
  const int64_t sbase = ((int64_t)bi * H + h) * N * N;
  const float* ck = ckpt + ((int64_t)bi * H + h) * nck * N * N;
  float* scr = scratch + ((int64_t)bi * H + h) * CH * N * N;

  __shared__ float sr[N], sd[N], sew[N], sk[N], sv[N], sa[N], sb[N], sdy[N], su[N], sdu[N];
  __shared__ float Sp[N][N + 1];  // state before the current token, [value][key]
  __shared__ float dS[N][N + 1];  // gradient of the loss w.r.t. the state after the current token

#pragma unroll
  for (int j = 0; j < N; j++) dS[i][j] = dsT ? dsT[sbase + i * N + j] : 0.f;

  for (int c = nck - 1; c >= 0; c--) {
    const int t0 = c * CH;
    const int t1 = min(T, t0 + CH);

    // 1. recompute the states before tokens t0..t1-1 into scratch
    float S[N];
#pragma unroll
    for (int j = 0; j < N; j++) S[j] = ck[(int64_t)c * N * N + j * N + i];
    for (int t = t0; t < t1; t++) {
      float* out = scr + (int64_t)(t - t0) * N * N;
#pragma unroll
      for (int j = 0; j < N; j++) out[j * N + i] = S[j];
      if (t + 1 == t1) break;
      const int64_t idx = (((int64_t)bi * T + t) * H + h) * N + i;
      __syncthreads();
      sd[i] = expf(-expf(to_f(w[idx])));
      sk[i] = to_f(k[idx]);
      sa[i] = to_f(a[idx]);
      sb[i] = to_f(b[idx]);
      const float vi = to_f(v[idx]);
      __syncthreads();
      float u = 0.f;
#pragma unroll
      for (int j = 0; j < N; j++) u += S[j] * sa[j];
#pragma unroll
      for (int j = 0; j < N; j++) S[j] = S[j] * sd[j] + u * sb[j] + vi * sk[j];
    }

    // 2. differentiate the chunk's tokens, newest first
    for (int t = t1 - 1; t >= t0; t--) {
      const int64_t idx = (((int64_t)bi * T + t) * H + h) * N + i;
      __syncthreads();  // previous readers of the shared vectors and of Sp are done
      const float ew = expf(to_f(w[idx]));
      sr[i] = to_f(r[idx]);
      sew[i] = ew;
      sd[i] = expf(-ew);
      sk[i] = to_f(k[idx]);
      sv[i] = to_f(v[idx]);
      sa[i] = to_f(a[idx]);
      sb[i] = to_f(b[idx]);
      sdy[i] = to_f(dy[idx]);
      const float* in = scr + (int64_t)(t - t0) * N * N;
#pragma unroll
      for (int j = 0; j < N; j++) Sp[i][j] = in[j * N + i];
      __syncthreads();

      // row phase, thread i = value row i: u_i = (Sp a)_i; G = dS + dy r^T; dv_i = (G k)_i; du_i = (G b)_i
      float u = 0.f;
#pragma unroll
      for (int j = 0; j < N; j++) u += Sp[i][j] * sa[j];
      su[i] = u;
      const float dyi = sdy[i];
      float dvi = 0.f, dui = 0.f;
#pragma unroll
      for (int j = 0; j < N; j++) {
        const float g = dS[i][j] + dyi * sr[j];
        dS[i][j] = g;
        dvi += g * sk[j];
        dui += g * sb[j];
      }
      sdu[i] = dui;
      put(&dv[idx], dvi);
      __syncthreads();

      // column phase, thread i = key column j: sums over value rows m
      const int j = i;
      float p = 0.f, daj = 0.f, ddj = 0.f, dkj = 0.f, dbj = 0.f, dyu = 0.f, dyv = 0.f;
#pragma unroll 8
      for (int m = 0; m < N; m++) {
        const float sp = Sp[m][j], g = dS[m][j];
        p += sp * sdy[m];    // (Sp^T dy)_j
        daj += sp * sdu[m];  // (Sp^T du)_j
        ddj += g * sp;       // sum_m G[m][j] Sp[m][j]
        dkj += g * sv[m];    // (G^T v)_j
        dbj += g * su[m];    // (G^T u)_j
        dyu += sdy[m] * su[m];
        dyv += sdy[m] * sv[m];
      }
      // dr = S_t^T dy with S_t = Sp diag(d) + u b^T + v k^T
      put(&dr[idx], sd[j] * p + sb[j] * dyu + sk[j] * dyv);
      put(&dw[idx], -ddj * sd[j] * sew[j]);  // d/dw exp(-exp(w)) = -exp(w) exp(-exp(w))
      put(&dk[idx], dkj);
      put(&da[idx], daj);
      put(&db[idx], dbj);
      __syncthreads();

      // gradient w.r.t. the state before this token: G diag(d) + du a^T
      const float dui_ = sdu[i];
#pragma unroll
      for (int jj = 0; jj < N; jj++) dS[i][jj] = dS[i][jj] * sd[jj] + dui_ * sa[jj];
    }
  }
#pragma unroll
  for (int j = 0; j < N; j++) ds0[sbase + i * N + j] = dS[i][j];
}

}  // namespace

// Launchers (host). Pointers are device pointers; s0 and dsT may be null (zeros). Return a cudaError_t value.
int wkv7_forward_launch(int B, int T, int H, const void* r, const void* w, const void* k, const void* v,
                        const void* a, const void* b, const float* s0, void* y, float* sT, float* ckpt,
                        cudaStream_t stream) {
  wkv7_forward_kernel<<<dim3(H, B), dim3(N), 0, stream>>>(
      T, H, (const F*)r, (const F*)w, (const F*)k, (const F*)v, (const F*)a, (const F*)b, s0, (F*)y, sT, ckpt);
  return (int)cudaGetLastError();
}

int wkv7_backward_launch(int B, int T, int H, const void* r, const void* w, const void* k, const void* v,
                         const void* a, const void* b, const void* dy, const float* dsT, const float* ckpt,
                         float* scratch, void* dr, void* dw, void* dk, void* dv, void* da, void* db, float* ds0,
                         cudaStream_t stream) {
  wkv7_backward_kernel<<<dim3(H, B), dim3(N), 0, stream>>>(
      T, H, (const F*)r, (const F*)w, (const F*)k, (const F*)v, (const F*)a, (const F*)b, (const F*)dy, dsT, ckpt,
      scratch, (F*)dr, (F*)dw, (F*)dk, (F*)dv, (F*)da, (F*)db, ds0);
  return (int)cudaGetLastError();
}
