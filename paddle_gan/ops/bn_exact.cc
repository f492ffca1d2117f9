// Paddle's own CPU BatchNorm2D training kernel (float32, [N, C, H, W]) on the OpenMP pool of Paddle's kernels
// and its oneDNN: the same floating-point operations in the same order, so the same bits (ops.ExactBatchNorm2D
// checks that against Paddle's kernel once per process before any layer uses it). Paddle's kernel
// (phi/kernels/cpu/batch_norm_kernel.cc, batch_norm_grad_kernel.cc) is Eigen code on one thread: ~7 % of a
// float32 DCGAN-32 step. Built with dnnl_conv.cc by paddle_gan/ops/build.py.
//
// What "the same order" means, as the wheel's Eigen computes it (AVX, 8-float packets, no FMA):
// - a column sum (the H*W values of one sample and channel): two packet accumulators over pairs of packets
//   from the first 32-byte aligned value on, a last single packet, the 8 lanes added as
//   ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), then the values before the aligned start and after the last
//   packet one by one (sums of expressions, which have no address: from value 0, no prologue);
// - per channel, its N column sums added in sample order, then divided by N*H*W (a float);
// - 1/std = sqrt(1 / (var + eps)), with Eigen's fast packet square root (rsqrt and one Newton step) for
//   the channels in whole packets of 8 and std::sqrt for the rest (Eigen counts the packets from the first
//   32-byte aligned value of Paddle's saved_variance buffer: taken as its start, which Paddle's CPU allocations
//   are; the check in exact_bn.py would see otherwise);
// - running = running * momentum + batch * float(1.0 - momentum) (the 1.0 is a double in Paddle's source).
// Backward for dy (Paddle's formula and association):
//   db = sum dy, dw = sum ((x - mean) * inv) * dy, dx = s * ((dy * N) * HW - db - ((x - mean) * dw) * inv)
//   with s = (w * inv) / (N * HW).
// No second derivative: a D whose input gradient is penalised uses gan/kernels' PenaltyBatchNorm.
#include <cmath>
#include <cstdint>
#include <vector>
#include <immintrin.h>

#include "paddle/extension.h"
#include "simd.h"  // KERNEL, on_rows

namespace {

struct Dims {
  int64_t n, c, hw;
};

Dims dims_of(const paddle::Tensor& x) {
  PD_CHECK(__builtin_cpu_supports("avx"), "bn_exact: needs AVX (as the Paddle kernel it reproduces)");
  const auto s = x.shape();
  PD_CHECK(s.size() == 4 && x.is_cpu() && x.dtype() == paddle::DataType::FLOAT32,
           "bn_exact: x must be a float32 [N, C, H, W] CPU tensor");
  PD_CHECK(s[0] * s[2] * s[3] > 1, "bn_exact: one value per channel (Paddle's kernel copies x then)");
  return {s[0], s[1], s[2] * s[3]};
}

const float* vec(const paddle::Tensor& t, int64_t c, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32 && t.numel() == c, "bn_exact: ", what,
           " must be float32 [C]");
  return t.data<float>();
}

paddle::Tensor empty(const std::vector<int64_t>& shape) {
  return paddle::empty(shape, paddle::DataType::FLOAT32, paddle::CPUPlace());
}

// The helpers that compute as the wheel's AVX Eigen does (AVX only: no FMA, the packet square root's rsqrt), for
// CPUs with AVX (checked before they run)
#pragma GCC push_options
#pragma GCC target("avx")

// Eigen's redux over 8-float packets of v(0) ... v(n-1) (v: a packet at i, and a value at i) from `start`
// (the first aligned index) on
template <class P, class V>
inline float redux8(int64_t n, int64_t start, P packet, V v) {
  const int64_t size = ((n - start) / 8) * 8, size2 = ((n - start) / 16) * 16;
  const int64_t end = start + size, end2 = start + size2;
  if (!size) {
    float r = v(0);
    for (int64_t i = 1; i < n; ++i) r += v(i);
    return r;
  }
  __m256 p0 = packet(start);
  if (size > 8) {
    __m256 p1 = packet(start + 8);
    for (int64_t i = start + 16; i < end2; i += 16) {
      p0 = _mm256_add_ps(p0, packet(i));
      p1 = _mm256_add_ps(p1, packet(i + 8));
    }
    p0 = _mm256_add_ps(p0, p1);
    if (end > end2) p0 = _mm256_add_ps(p0, packet(end2));
  }
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(p0), _mm256_extractf128_ps(p0, 1));
  const __m128 t = _mm_add_ps(h, _mm_movehl_ps(h, h));
  float r = _mm_cvtss_f32(t) + _mm_cvtss_f32(_mm_shuffle_ps(t, t, 1));
  for (int64_t i = 0; i < start; ++i) r += v(i);
  for (int64_t i = end; i < n; ++i) r += v(i);
  return r;
}

// Eigen's first_default_aligned: how many floats from p to the next 32-byte boundary (at most n)
inline int64_t aligned_start(const float* p, int64_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a & 3) return n;
  const int64_t first = (8 - int64_t((a / 4) & 7)) & 7;
  return first < n ? first : n;
}

// Eigen's AVX psqrt under EIGEN_FAST_MATH, 8 values in place
void fast_sqrt8(float* v) {
  const __m256 x = _mm256_loadu_ps(v);
  const __m256 half = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  const __m256 denormal = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ),
                                        _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
  __m256 r = _mm256_rsqrt_ps(x);
  r = _mm256_mul_ps(r, _mm256_sub_ps(_mm256_set1_ps(1.5f), _mm256_mul_ps(half, _mm256_mul_ps(r, r))));
  _mm256_storeu_ps(v, _mm256_andnot_ps(denormal, _mm256_mul_ps(x, r)));
}

// the sums of a column of hw values: of x (from its aligned start), of (x - m)^2, of ((x - m) r) g
float sum_of(const float* x, int64_t hw) {
  return redux8(hw, aligned_start(x, hw), [x](int64_t i) { return _mm256_loadu_ps(x + i); },
                [x](int64_t i) { return x[i]; });
}

float squares_of(const float* x, int64_t hw, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  return redux8(hw, 0, [x, vm](int64_t i) { const __m256 e = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
                                           return _mm256_mul_ps(e, e); },
                [x, m](int64_t i) { const float e = x[i] - m; return e * e; });
}

float products_of(const float* x, const float* g, int64_t hw, float m, float r) {
  const __m256 vm = _mm256_set1_ps(m), vr = _mm256_set1_ps(r);
  return redux8(hw, 0, [x, g, vm, vr](int64_t i) {
                  return _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr),
                                       _mm256_loadu_ps(g + i)); },
                [x, g, m, r](int64_t i) { return ((x[i] - m) * r) * g[i]; });
}

#pragma GCC pop_options

// per channel k in [k0, k1): mean and biased variance; a channel's column sums are added in sample order
// (the loop over samples outside, to read memory in order)
void channel_stats(const float* x, Dims d, int64_t k0, int64_t k1, float* mean, float* var) {
  const float count = float(d.n * d.hw);
  for (int64_t k = k0; k < k1; ++k) mean[k] = 0.f, var[k] = 0.f;
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t k = k0; k < k1; ++k) mean[k] += sum_of(x + (n * d.c + k) * d.hw, d.hw);
  for (int64_t k = k0; k < k1; ++k) mean[k] /= count;
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t k = k0; k < k1; ++k) var[k] += squares_of(x + (n * d.c + k) * d.hw, d.hw, mean[k]);
  for (int64_t k = k0; k < k1; ++k) var[k] /= count;
}

// y = x * scale + shift over the columns [r0, r1) of N*C
KERNEL void normalize(const float* x, Dims d, int64_t r0, int64_t r1, const float* scale, const float* shift,
                      float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float a = scale[r % d.c], b = shift[r % d.c];
    const float* p = x + r * d.hw;
    float* q = y + r * d.hw;
    for (int64_t i = 0; i < d.hw; ++i) q[i] = p[i] * a + b;
  }
}

// per channel k in [k0, k1): db = sum dy, dw = sum ((x - mean) * inv) * dy, in sample order
void grad_sums(const float* x, const float* dy, Dims d, int64_t k0, int64_t k1, const float* mean, const float* inv,
               float* dw, float* db) {
  for (int64_t k = k0; k < k1; ++k) db[k] = 0.f, dw[k] = 0.f;
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t at = (n * d.c + k) * d.hw;
      db[k] += sum_of(dy + at, d.hw);
      dw[k] += products_of(x + at, dy + at, d.hw, mean[k], inv[k]);
    }
}

// dx = s * ((dy * N) * HW - db - ((x - mean) * dw) * inv) over the columns [r0, r1)
KERNEL void input_grad(const float* x, const float* dy, Dims d, int64_t r0, int64_t r1, const float* mean,
                       const float* inv, const float* s, const float* dw, const float* db, float* dx) {
  const float n = float(d.n), hw = float(d.hw);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k = r % d.c;
    const float m = mean[k], iv = inv[k], sk = s[k], b = db[k], w = dw[k];
    const float* p = x + r * d.hw;
    const float* g = dy + r * d.hw;
    float* q = dx + r * d.hw;
    for (int64_t i = 0; i < d.hw; ++i) q[i] = sk * ((g[i] * n) * hw - b - ((p[i] - m) * w) * iv);
  }
}

}  // namespace

std::vector<paddle::Tensor> BnExactForward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                           const paddle::Tensor& bias, const paddle::Tensor& running_mean,
                                           const paddle::Tensor& running_var, float eps, float momentum) {
  const Dims d = dims_of(x);
  const int64_t C = d.c;
  const float* pw = vec(weight, C, "weight");
  const float* pb = vec(bias, C, "bias");
  const float* prm = vec(running_mean, C, "the running mean");
  const float* prv = vec(running_var, C, "the running variance");
  auto y = empty(x.shape()), mean = empty({C}), inv = empty({C}), new_mean = empty({C}), new_var = empty({C});
  float* pm = mean.data<float>();
  float* pi = inv.data<float>();  // the variance first, then 1 / std in place (Paddle's saved_variance)
  const float* px = x.data<float>();
  on_rows(C, [&](int64_t k0, int64_t k1, int) { channel_stats(px, d, k0, k1, pm, pi); });
  const float keep = float(1.0 - momentum);
  float* pnm = new_mean.data<float>();
  float* pnv = new_var.data<float>();
  for (int64_t k = 0; k < C; ++k) {
    pnm[k] = prm[k] * momentum + pm[k] * keep;
    pnv[k] = prv[k] * momentum + pi[k] * keep;
    pi[k] = 1.f / (pi[k] + eps);
  }
  int64_t k = 0;
  for (; k + 8 <= C; k += 8) fast_sqrt8(pi + k);
  for (; k < C; ++k) pi[k] = std::sqrt(pi[k]);
  std::vector<float> scale(C), shift(C);
  for (k = 0; k < C; ++k) {
    scale[k] = pi[k] * pw[k];
    shift[k] = pb[k] - (pm[k] * pi[k]) * pw[k];
  }
  float* py = y.data<float>();
  on_rows(d.n * C, [&](int64_t r0, int64_t r1, int) { normalize(px, d, r0, r1, scale.data(), shift.data(), py); });
  return {y, mean, inv, new_mean, new_var};
}

std::vector<paddle::Tensor> BnExactBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                            const paddle::Tensor& mean, const paddle::Tensor& inv,
                                            const paddle::Tensor& dy, float eps, float momentum) {
  const Dims d = dims_of(x);
  const int64_t C = d.c;
  PD_CHECK(dy.is_cpu() && dy.dtype() == paddle::DataType::FLOAT32 && dy.numel() == x.numel(),
           "bn_exact: the output gradient must be float32 of x's shape");
  const float* pw = vec(weight, C, "weight");
  const float* pm = vec(mean, C, "the batch mean");
  const float* pi = vec(inv, C, "the batch 1 / std");
  auto dx = empty(x.shape()), dw = empty({C}), db = empty({C});
  const float* px = x.data<float>();
  const float* pg = dy.data<float>();
  float* pdw = dw.data<float>();
  float* pdb = db.data<float>();
  on_rows(C, [&](int64_t k0, int64_t k1, int) { grad_sums(px, pg, d, k0, k1, pm, pi, pdw, pdb); });
  std::vector<float> s(C);
  const float count = float(d.n * d.hw);
  for (int64_t k = 0; k < C; ++k) s[k] = (pw[k] * pi[k]) / count;
  float* pdx = dx.data<float>();
  on_rows(d.n * C, [&](int64_t r0, int64_t r1, int) {
    input_grad(px, pg, d, r0, r1, pm, pi, s.data(), pdw, pdb, pdx);
  });
  return {dx, dw, db};
}

std::vector<std::vector<int64_t>> BnExactInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                                    const std::vector<int64_t>& b, const std::vector<int64_t>& rm,
                                                    const std::vector<int64_t>& rv, float eps, float momentum) {
  return {x, w, w, w, w};
}

std::vector<paddle::DataType> BnExactInferDtype(const paddle::DataType& x, const paddle::DataType& w,
                                                const paddle::DataType& b, const paddle::DataType& rm,
                                                const paddle::DataType& rv) {
  return {x, x, x, x, x};
}

PD_BUILD_OP(bn_exact)
    .Inputs({"X", "Weight", "Bias", "RunningMean", "RunningVar"})
    .Outputs({"Y", "Mean", "InvStd", "NewMean", "NewVar"})
    .Attrs({"eps: float", "momentum: float"})
    .SetKernelFn(PD_KERNEL(BnExactForward))
    .SetInferShapeFn(PD_INFER_SHAPE(BnExactInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BnExactInferDtype));

PD_BUILD_GRAD_OP(bn_exact)
    .Inputs({"X", "Weight", "Mean", "InvStd", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .Attrs({"eps: float", "momentum: float"})
    .SetKernelFn(PD_KERNEL(BnExactBackward));

std::vector<paddle::Tensor> BnExactNoSecondDerivative(const paddle::Tensor& ddx, float eps, float momentum) {
  PD_THROW("bn_exact has no second derivative (a D whose input gradient is penalised uses PenaltyBatchNorm)");
}

PD_BUILD_DOUBLE_GRAD_OP(bn_exact)
    .Inputs({paddle::Grad(paddle::Grad("X"))})
    .Outputs({paddle::Grad(paddle::Grad("Y"))})
    .Attrs({"eps: float", "momentum: float"})
    .SetKernelFn(PD_KERNEL(BnExactNoSecondDerivative));
