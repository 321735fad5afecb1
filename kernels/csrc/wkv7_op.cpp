// PyTorch binding of kernels/csrc/wkv7.cu, built by torch.utils.cpp_extension on first use (kernels/cuda.py).
// The Python side allocates every output and checks shapes and dtypes; this file checks again what would
// corrupt memory (device, dtype, contiguity, sizes) and launches on the current stream.

#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#ifndef WKV_N
#define WKV_N 64
#endif
#ifndef WKV_CHUNK
#define WKV_CHUNK 16
#endif

int wkv7_forward_launch(int B, int T, int H, const void* r, const void* w, const void* k, const void* v,
                        const void* a, const void* b, const float* s0, void* y, float* sT, float* ckpt,
                        cudaStream_t stream);
int wkv7_backward_launch(int B, int T, int H, const void* r, const void* w, const void* k, const void* v,
                         const void* a, const void* b, const void* dy, const float* dsT, const float* ckpt,
                         float* scratch, void* dr, void* dw, void* dk, void* dv, void* da, void* db, float* ds0,
                         cudaStream_t stream);

namespace {

#ifdef WKV_BF16
const auto kDtype = torch::kBFloat16;
#else
const auto kDtype = torch::kFloat32;
#endif

void check_io(const torch::Tensor& x, const char* name, const torch::Tensor& like) {
  TORCH_CHECK(x.is_cuda(), "wkv7 cuda: ", name, " must be a CUDA tensor");
  TORCH_CHECK(x.scalar_type() == kDtype, "wkv7 cuda: ", name, " has dtype ", x.scalar_type(), ", this build takes ",
              kDtype);
  TORCH_CHECK(x.is_contiguous(), "wkv7 cuda: ", name, " must be contiguous");
  TORCH_CHECK(x.sizes() == like.sizes(), "wkv7 cuda: ", name, " has shape ", x.sizes(), ", expected ", like.sizes());
}

void check_state(const torch::Tensor& x, const char* name, int64_t numel) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == torch::kFloat32 && x.is_contiguous(), "wkv7 cuda: ", name,
              " must be a contiguous float32 CUDA tensor");
  TORCH_CHECK(x.numel() == numel, "wkv7 cuda: ", name, " has ", x.numel(), " elements, expected ", numel);
}

const float* opt_ptr(const torch::Tensor& x) { return x.numel() ? x.data_ptr<float>() : nullptr; }

}  // namespace

// s0 may be empty (zero initial state). y: like r; sT: [B, H, N, N]; ckpt: [B, H, ceil(T / CHUNK), N, N].
void forward(torch::Tensor r, torch::Tensor w, torch::Tensor k, torch::Tensor v, torch::Tensor a, torch::Tensor b,
             torch::Tensor s0, torch::Tensor y, torch::Tensor sT, torch::Tensor ckpt) {
  TORCH_CHECK(r.dim() == 4 && r.size(3) == WKV_N, "wkv7 cuda: r must be [B, T, H, ", WKV_N, "]");
  const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = WKV_N;
  for (auto& [x, name] : {std::pair{w, "w"}, {k, "k"}, {v, "v"}, {a, "a"}, {b, "b"}, {y, "y"}, {r, "r"}})
    check_io(x, name, r);
  if (s0.numel()) check_state(s0, "s0", B * H * N * N);
  check_state(sT, "sT", B * H * N * N);
  check_state(ckpt, "ckpt", B * H * ((T + WKV_CHUNK - 1) / WKV_CHUNK) * N * N);
  const c10::cuda::OptionalCUDAGuard guard(r.device());
  const int err = wkv7_forward_launch((int)B, (int)T, (int)H, r.data_ptr(), w.data_ptr(), k.data_ptr(),
                                      v.data_ptr(), a.data_ptr(), b.data_ptr(), opt_ptr(s0), y.data_ptr(),
                                      sT.data_ptr<float>(), ckpt.data_ptr<float>(),
                                      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == 0, "wkv7 cuda: forward launch failed: ", cudaGetErrorString((cudaError_t)err));
}

// dsT may be empty (no gradient for the final state). Gradients: like r; ds0: [B, H, N, N];
// scratch: [B, H, CHUNK, N, N].
void backward(torch::Tensor r, torch::Tensor w, torch::Tensor k, torch::Tensor v, torch::Tensor a, torch::Tensor b,
              torch::Tensor dy, torch::Tensor dsT, torch::Tensor ckpt, torch::Tensor scratch, torch::Tensor dr,
              torch::Tensor dw, torch::Tensor dk, torch::Tensor dv, torch::Tensor da, torch::Tensor db,
              torch::Tensor ds0) {
  TORCH_CHECK(r.dim() == 4 && r.size(3) == WKV_N, "wkv7 cuda: r must be [B, T, H, ", WKV_N, "]");
  const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = WKV_N;
  for (auto& [x, name] : {std::pair{w, "w"}, {k, "k"}, {v, "v"}, {a, "a"}, {b, "b"}, {dy, "dy"}, {dr, "dr"},
                          {dw, "dw"}, {dk, "dk"}, {dv, "dv"}, {da, "da"}, {db, "db"}, {r, "r"}})
    check_io(x, name, r);
  if (dsT.numel()) check_state(dsT, "dsT", B * H * N * N);
  check_state(ckpt, "ckpt", B * H * ((T + WKV_CHUNK - 1) / WKV_CHUNK) * N * N);
  check_state(scratch, "scratch", B * H * WKV_CHUNK * N * N);
  check_state(ds0, "ds0", B * H * N * N);
  const c10::cuda::OptionalCUDAGuard guard(r.device());
  const int err = wkv7_backward_launch(
      (int)B, (int)T, (int)H, r.data_ptr(), w.data_ptr(), k.data_ptr(), v.data_ptr(), a.data_ptr(), b.data_ptr(),
      dy.data_ptr(), opt_ptr(dsT), ckpt.data_ptr<float>(), scratch.data_ptr<float>(), dr.data_ptr(), dw.data_ptr(),
      dk.data_ptr(), dv.data_ptr(), da.data_ptr(), db.data_ptr(), ds0.data_ptr<float>(),
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == 0, "wkv7 cuda: backward launch failed: ", cudaGetErrorString((cudaError_t)err));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "WKV7 forward (see kernels/WKV7.md)");
  m.def("backward", &backward, "WKV7 backward (see kernels/WKV7.md)");
}
