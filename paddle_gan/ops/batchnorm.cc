// BatchNorm2D in training mode (batch statistics) for a D whose input gradient is penalised (R1,
// WGAN-GP): forward, backward and the second derivative as Paddle custom operators, each channel on
// the OpenMP pool Paddle's kernels and its oneDNN use (the wheel's libiomp5). Composed of Paddle's
// elementwise and reduction kernels (gan/kernels.py's PenaltyBatchNorm) the same function ran on one
// thread: ~17 % of an R1 step, the part of it that did not get faster with a second core.
// Built with dnnl_conv.cc by paddle_gan/ops/build.py.
//
// Per channel, over its M = N * H * W values (sums in double):
//   mu = mean(x), var = mean((x - mu)^2) (biased, as Paddle's kernel), r = 1 / sqrt(var + eps),
//   xh = (x - mu) r, y = gamma xh + beta.
// Backward for g = dy, with a = mean(g), b = mean(g xh):
//   dx = gamma r (g - a - xh b),  dgamma = M b,  dbeta = M a.
// Second derivative for incoming ddx, ddgamma, ddbeta (gradients of dx, dgamma, dbeta), with
// m = mean(ddx), p = mean(ddx xh), s = mean(ddx g) - a m:
//   grad of g:     gamma r (ddx - m - xh p) + ddgamma xh + ddbeta
//   grad of gamma: M r (s - b p)
//   grad of x:     gamma r^2 (3 xh b p - xh s - (g - a) p - b (ddx - m)) + ddgamma r (g - a - xh b)
// (r depends on x through var: d r / d x = -r^2 xh / M; d xh / d x = r (I - 1/M - xh xh^T / M)).
#include <cmath>
#include <cstdint>
#include <vector>

#include "paddle/extension.h"

namespace {

struct Shape {
  int64_t n, c, hw;
};

Shape shape_of(const paddle::Tensor& x) {
  const auto s = x.shape();
  PD_CHECK(s.size() == 4, "fast_bn: x must be [N, C, H, W]");
  PD_CHECK(x.is_cpu() && x.dtype() == paddle::DataType::FLOAT32, "fast_bn: x must be a float32 CPU tensor");
  return {s[0], s[1], s[2] * s[3]};
}

const float* ptr(const paddle::Tensor& t, const Shape& s, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32, "fast_bn: ", what, " must be float32 on the CPU");
  PD_CHECK(t.numel() == s.n * s.c * s.hw, "fast_bn: ", what, " must have x's shape");
  return t.data<float>();
}

const float* vec_ptr(const paddle::Tensor& t, int64_t c, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32 && t.numel() == c, "fast_bn: ", what,
           " must be float32 [C]");
  return t.data<float>();
}

const float* opt_ptr(const paddle::optional<paddle::Tensor>& t, int64_t c, const char* what) {
  return t ? vec_ptr(*t, c, what) : nullptr;
}

paddle::Tensor like(const std::vector<int64_t>& shape) {
  return paddle::empty(shape, paddle::DataType::FLOAT32, paddle::CPUPlace());
}

// f(i) for every index i of channel k (its N blocks of H * W values)
template <class F>
void each(const Shape& s, int64_t k, F f) {
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t o = (i * s.c + k) * s.hw;
    for (int64_t j = 0; j < s.hw; ++j) f(o + j);
  }
}

// mean, biased variance and 1 / sqrt(var + eps) of channel k. The backward passes compute them again
// from x rather than take the forward's outputs: then the backward's only inputs are x, gamma and dy,
// and the second derivative owes gradients to those three alone (see the end of the file)
void stats(const float* x, const Shape& s, int64_t k, float eps, double* mu, double* var, double* r) {
  const double M = static_cast<double>(s.n * s.hw);
  double sum = 0.0, sq = 0.0;
  each(s, k, [&](int64_t i) { sum += x[i]; });
  const double m = sum / M;
  each(s, k, [&](int64_t i) { sq += (x[i] - m) * (x[i] - m); });
  *mu = m;
  *var = sq / M;
  *r = 1.0 / std::sqrt(*var + eps);
}

}  // namespace

std::vector<paddle::Tensor> FastBnForward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                          const paddle::Tensor& beta, float eps) {
  const Shape s = shape_of(x);
  const float* px = x.data<float>();
  const float* pg = vec_ptr(gamma, s.c, "gamma");
  const float* pb = vec_ptr(beta, s.c, "beta");
  auto y = like(x.shape()), mean = like({s.c}), var = like({s.c});
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pv = var.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < s.c; ++k) {
    double mu, v, r;
    stats(px, s, k, eps, &mu, &v, &r);
    pm[k] = static_cast<float>(mu);
    pv[k] = static_cast<float>(v);
    const double scale = r * pg[k];
    each(s, k, [&](int64_t i) { py[i] = static_cast<float>((px[i] - mu) * scale + pb[k]); });
  }
  return {y, mean, var};
}

std::vector<paddle::Tensor> FastBnBackward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                           const paddle::Tensor& dy, float eps) {
  const Shape s = shape_of(x);
  const float* px = x.data<float>();
  const float* pg = vec_ptr(gamma, s.c, "gamma");
  const float* pdy = ptr(dy, s, "the output gradient");
  auto dx = like(x.shape()), dgamma = like({s.c}), dbeta = like({s.c});
  float* pdx = dx.data<float>();
  float* pdg = dgamma.data<float>();
  float* pdb = dbeta.data<float>();
  const double M = static_cast<double>(s.n * s.hw);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < s.c; ++k) {
    double mu, v, r, sg = 0.0, sgx = 0.0;
    stats(px, s, k, eps, &mu, &v, &r);
    each(s, k, [&](int64_t i) {
      sg += pdy[i];
      sgx += pdy[i] * (px[i] - mu) * r;
    });
    const double a = sg / M, b = sgx / M, gr = pg[k] * r;
    each(s, k, [&](int64_t i) { pdx[i] = static_cast<float>(gr * (pdy[i] - a - (px[i] - mu) * r * b)); });
    pdg[k] = static_cast<float>(sgx);
    pdb[k] = static_cast<float>(sg);
  }
  return {dx, dgamma, dbeta};
}

std::vector<paddle::Tensor> FastBnDoubleBackward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                                 const paddle::Tensor& dy,
                                                 const paddle::optional<paddle::Tensor>& ddx,
                                                 const paddle::optional<paddle::Tensor>& ddgamma,
                                                 const paddle::optional<paddle::Tensor>& ddbeta, float eps) {
  const Shape s = shape_of(x);
  const float* px = x.data<float>();
  const float* pg = vec_ptr(gamma, s.c, "gamma");
  const float* pdy = ptr(dy, s, "the output gradient");
  const float* pddx = ddx ? ptr(*ddx, s, "ddx") : nullptr;
  const float* pddg = opt_ptr(ddgamma, s.c, "ddgamma");
  const float* pddb = opt_ptr(ddbeta, s.c, "ddbeta");
  auto gx = like(x.shape()), ggamma = like({s.c}), gdy = like(x.shape());
  float* pgx = gx.data<float>();
  float* pgg = ggamma.data<float>();
  float* pgdy = gdy.data<float>();
  const double M = static_cast<double>(s.n * s.hw);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < s.c; ++k) {
    double mu, v, r, sg = 0.0, sgx = 0.0, sd = 0.0, sdx = 0.0, sdg = 0.0;
    stats(px, s, k, eps, &mu, &v, &r);
    each(s, k, [&](int64_t i) {
      const double xh = (px[i] - mu) * r, d = pddx ? pddx[i] : 0.0;
      sg += pdy[i];
      sgx += pdy[i] * xh;
      sd += d;
      sdx += d * xh;
      sdg += d * pdy[i];
    });
    const double a = sg / M, b = sgx / M, m = sd / M, p = sdx / M, q = sdg / M - a * m;
    const double gam = pg[k], ddg = pddg ? pddg[k] : 0.0, ddb = pddb ? pddb[k] : 0.0;
    each(s, k, [&](int64_t i) {
      const double xh = (px[i] - mu) * r, d = pddx ? pddx[i] : 0.0, ga = pdy[i] - a;
      pgdy[i] = static_cast<float>(gam * r * (d - m - xh * p) + ddg * xh + ddb);
      pgx[i] = static_cast<float>(gam * r * r * (3.0 * xh * b * p - xh * q - ga * p - b * (d - m)) +
                                  ddg * r * (ga - xh * b));
    });
    pgg[k] = static_cast<float>(M * r * (q - b * p));
  }
  return {gx, ggamma, gdy};
}

std::vector<std::vector<int64_t>> FastBnInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& g,
                                                   const std::vector<int64_t>& b, float eps) {
  return {x, {x[1]}, {x[1]}};
}

std::vector<paddle::DataType> FastBnInferDtype(const paddle::DataType& x, const paddle::DataType& g,
                                               const paddle::DataType& b) {
  return {x, x, x};
}

PD_BUILD_OP(fast_bn)
    .Inputs({"X", "Gamma", "Beta"})
    .Outputs({"Out", "Mean", "Var"})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(FastBnForward))
    .SetInferShapeFn(PD_INFER_SHAPE(FastBnInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FastBnInferDtype));

PD_BUILD_GRAD_OP(fast_bn)
    .Inputs({"X", "Gamma", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Gamma"), paddle::Grad("Beta")})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(FastBnBackward));

// every input of the backward gets its gradient (an input left out cut the layers below it off a
// penalty's gradient in Paddle's engine, see act.cc)
PD_BUILD_DOUBLE_GRAD_OP(fast_bn)
    .Inputs({"X", "Gamma", paddle::Grad("Out"), paddle::Optional(paddle::Grad(paddle::Grad("X"))),
             paddle::Optional(paddle::Grad(paddle::Grad("Gamma"))),
             paddle::Optional(paddle::Grad(paddle::Grad("Beta")))})
    .Outputs({paddle::Grad("X"), paddle::Grad("Gamma"), paddle::Grad(paddle::Grad("Out"))})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(FastBnDoubleBackward));
