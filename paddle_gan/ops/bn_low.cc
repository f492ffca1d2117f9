// BatchNorm2D in training mode on the bfloat16 channels-last activations of a chain in bfloat16
// (ops.channels_last, train.amp=bfloat16 on a CPU): reads and writes bfloat16, half the memory
// traffic of the float32 activations Paddle's one-thread kernel took, on the OpenMP pool of Paddle's
// kernels and its oneDNN; statistics, scale, shift and their gradients float32 (sums in double).
// No second derivative: a D whose input gradient is penalised keeps float32 activations.
// Built with dnnl_conv.cc by paddle_gan/ops/build.py.
//
// x [N, H, W, C] as M = N H W rows of C. Per channel: mu = mean(x), var = mean((x - mu)^2) (biased,
// as Paddle's kernel; the running statistics are updated in Python from these), r = 1 / sqrt(var + eps),
// xh = (x - mu) r, y = gamma xh + beta. Backward for g = dy with a = mean(g), b = mean(g xh):
// dx = gamma r (g - a - xh b), dgamma = M b, dbeta = M a.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "simd.h"  // KERNEL, load / store of float32 and bfloat16, on_rows
#include "paddle/extension.h"

namespace {

using bf16 = uint16_t;

const bf16* in(const paddle::Tensor& t, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::BFLOAT16 && t.shape().size() == 4, "bn_low: ", what,
           " must be a bfloat16 [N, H, W, C] CPU tensor");
  return reinterpret_cast<const bf16*>(t.data());
}

const float* vec(const paddle::Tensor& t, int64_t c, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32 && t.numel() == c, "bn_low: ", what,
           " must be float32 [C]");
  return t.data<float>();
}

paddle::Tensor empty(const std::vector<int64_t>& shape, paddle::DataType type = paddle::DataType::FLOAT32) {
  return paddle::empty(shape, type, paddle::CPUPlace());
}

// The row loops (KERNEL: for this CPU's vector width). Sums run in float over blocks of kBlock rows and
// are added up in double.
constexpr int64_t kBlock = 64;

// acc1[k] += sum of x, or with mean: acc1[k] += sum of (x - mean)^2, over rows [r0, r1)
KERNEL void sum_rows(const bf16* x, int64_t r0, int64_t r1, int64_t C, const float* mean, double* acc1, float* tmp) {
  for (int64_t b = r0; b < r1; b += kBlock) {
    for (int64_t k = 0; k < C; ++k) tmp[k] = 0.f;
    for (int64_t r = b; r < std::min(b + kBlock, r1); ++r) {
      if (mean) {
        for (int64_t k = 0; k < C; ++k) {
          const float d = load(x, r * C + k) - mean[k];
          tmp[k] += d * d;
        }
      } else {
        for (int64_t k = 0; k < C; ++k) tmp[k] += load(x, r * C + k);
      }
    }
    for (int64_t k = 0; k < C; ++k) acc1[k] += tmp[k];
  }
}

// acc1[k] += sum of g, acc2[k] += sum of g (x - mean) r, over rows [r0, r1)
KERNEL void sum_grad_rows(const bf16* x, const bf16* g, int64_t r0, int64_t r1, int64_t C, const float* mean,
                          const float* r, double* acc1, double* acc2, float* tmp) {
  for (int64_t b = r0; b < r1; b += kBlock) {
    for (int64_t k = 0; k < 2 * C; ++k) tmp[k] = 0.f;
    for (int64_t row = b; row < std::min(b + kBlock, r1); ++row) {
      for (int64_t k = 0; k < C; ++k) {
        const float gv = load(g, row * C + k);
        tmp[k] += gv;
        tmp[C + k] += gv * ((load(x, row * C + k) - mean[k]) * r[k]);
      }
    }
    for (int64_t k = 0; k < C; ++k) acc1[k] += tmp[k], acc2[k] += tmp[C + k];
  }
}

// y = x scale + shift over rows [r0, r1)
KERNEL void normalize_rows(const bf16* x, int64_t r0, int64_t r1, int64_t C, const float* scale, const float* shift,
                           bf16* y) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t k = 0; k < C; ++k) store(y, r * C + k, load(x, r * C + k) * scale[k] + shift[k]);
}

// dx = gamma r (g - a - xh b) over rows [r0, r1)
KERNEL void input_grad_rows(const bf16* x, const bf16* g, int64_t r0, int64_t r1, int64_t C, const float* mean,
                            const float* r, const float* gr, const float* a, const float* b, bf16* dx) {
  for (int64_t row = r0; row < r1; ++row)
    for (int64_t k = 0; k < C; ++k) {
      const int64_t i = row * C + k;
      const float xh = (load(x, i) - mean[k]) * r[k];
      store(dx, i, gr[k] * (load(g, i) - a[k] - xh * b[k]));
    }
}

}  // namespace

std::vector<paddle::Tensor> BnLowForward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                         const paddle::Tensor& beta, float eps) {
  const bf16* px = in(x, "x");
  const int64_t C = x.shape()[3], M = x.numel() / C;
  const float* pg = vec(gamma, C, "gamma");
  const float* pb = vec(beta, C, "beta");
  auto y = empty(x.shape(), paddle::DataType::BFLOAT16), mean = empty({C}), var = empty({C});
  float* pm = mean.data<float>();
  float* pv = var.data<float>();
  const int threads = pool_size();
  std::vector<double> part(size_t(threads) * C);
  std::vector<float> tmp(size_t(threads) * C);
  for (const float* centre : {static_cast<const float*>(nullptr), static_cast<const float*>(pm)}) {
    std::fill(part.begin(), part.end(), 0.0);
    on_rows(M, [&](int64_t r0, int64_t r1, int t) {
      sum_rows(px, r0, r1, C, centre, part.data() + size_t(t) * C, tmp.data() + size_t(t) * C);
    });
    const auto sums = total(part, threads, C);
    for (int64_t k = 0; k < C; ++k) (centre ? pv : pm)[k] = float(sums[k] / M);  // the mean, then the variance
  }
  std::vector<float> scale(C), shift(C);
  for (int64_t k = 0; k < C; ++k) {
    scale[k] = float(pg[k] / std::sqrt(double(pv[k]) + eps));
    shift[k] = pb[k] - pm[k] * scale[k];
  }
  bf16* py = reinterpret_cast<bf16*>(y.data());
  on_rows(M, [&](int64_t r0, int64_t r1, int) { normalize_rows(px, r0, r1, C, scale.data(), shift.data(), py); });
  return {y, mean, var};
}

std::vector<paddle::Tensor> BnLowBackward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                          const paddle::Tensor& mean, const paddle::Tensor& var,
                                          const paddle::Tensor& dy, float eps) {
  const bf16* px = in(x, "x");
  const bf16* pdy = in(dy, "the output gradient");
  const int64_t C = x.shape()[3], M = x.numel() / C;
  PD_CHECK(dy.numel() == x.numel(), "bn_low: the output gradient must have x's shape");
  const float* pg = vec(gamma, C, "gamma");
  const float* pm = vec(mean, C, "mean");
  const float* pv = vec(var, C, "var");
  std::vector<float> r(C);
  for (int64_t k = 0; k < C; ++k) r[k] = float(1.0 / std::sqrt(double(pv[k]) + eps));
  const int threads = pool_size();
  std::vector<double> part(size_t(threads) * 2 * C, 0.0);
  std::vector<float> tmp(size_t(threads) * 2 * C);
  on_rows(M, [&](int64_t r0, int64_t r1, int t) {
    double* acc = part.data() + size_t(t) * 2 * C;
    sum_grad_rows(px, pdy, r0, r1, C, pm, r.data(), acc, acc + C, tmp.data() + size_t(t) * 2 * C);
  });
  const auto sums = total(part, threads, 2 * C);  // sum of g, then of g xh
  auto dx = empty(x.shape(), paddle::DataType::BFLOAT16), dgamma = empty({C}), dbeta = empty({C});
  float* pdg = dgamma.data<float>();
  float* pdb = dbeta.data<float>();
  std::vector<float> a(C), b(C), gr(C);
  for (int64_t k = 0; k < C; ++k) {
    a[k] = float(sums[k] / M);
    b[k] = float(sums[C + k] / M);
    gr[k] = pg[k] * r[k];
    pdg[k] = float(sums[C + k]);
    pdb[k] = float(sums[k]);
  }
  bf16* pdx = reinterpret_cast<bf16*>(dx.data());
  on_rows(M, [&](int64_t r0, int64_t r1, int) {
    input_grad_rows(px, pdy, r0, r1, C, pm, r.data(), gr.data(), a.data(), b.data(), pdx);
  });
  return {dx, dgamma, dbeta};
}

std::vector<std::vector<int64_t>> BnLowInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& gamma,
                                                  const std::vector<int64_t>& beta, float eps) {
  return {x, gamma, gamma};
}

std::vector<paddle::DataType> BnLowInferDtype(const paddle::DataType& x, const paddle::DataType& gamma,
                                              const paddle::DataType& beta) {
  return {x, gamma, gamma};
}

PD_BUILD_OP(bn_low)
    .Inputs({"X", "Gamma", "Beta"})
    .Outputs({"Y", "Mean", "Var"})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(BnLowForward))
    .SetInferShapeFn(PD_INFER_SHAPE(BnLowInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(BnLowInferDtype));

PD_BUILD_GRAD_OP(bn_low)
    .Inputs({"X", "Gamma", "Mean", "Var", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Gamma"), paddle::Grad("Beta")})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(BnLowBackward));

std::vector<paddle::Tensor> BnLowNoSecondDerivative(const paddle::Tensor& ddx, float eps) {
  PD_THROW("no second derivative through bfloat16 activations (a penalised D keeps float32 ones)");
}

PD_BUILD_DOUBLE_GRAD_OP(bn_low)
    .Inputs({paddle::Grad(paddle::Grad("X"))})
    .Outputs({paddle::Grad(paddle::Grad("Y"))})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(BnLowNoSecondDerivative));
