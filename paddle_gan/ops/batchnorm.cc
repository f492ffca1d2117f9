// BatchNorm2D in training mode (batch statistics) for a D whose input gradient is penalised (R1,
// WGAN-GP): forward, backward and the second derivative as Paddle custom operators, each channel on
// the OpenMP pool Paddle's kernels and its oneDNN use (the wheel's libiomp5). Composed of Paddle's
// elementwise and reduction kernels (gan/kernels.py's PenaltyBatchNorm) the same function ran on one
// thread: ~17 % of an R1 step, the part of it that did not get faster with a second core.
// Built with dnnl_conv.cc by paddle_gan/ops/build.py.
//
// x is [N, C, H, W] (nhwc false: each channel's values in N blocks of H * W, a channel per thread) or
// [N, H, W, C] (nhwc, a channels-last chain of ops.channels_last: M = N H W rows of C, the rows shared
// out among the threads and their per-thread partial sums added up in thread order). The sums of a
// channel run in the same order in both layouts' own loops, so float32 NCHW results do not depend on
// the pool's size; NHWC ones do (as oneDNN's).
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
#include "simd.h"  // on_rows, total

namespace {

struct Shape {
  int64_t n, c, hw;
  bool nhwc;
};

Shape shape_of(const paddle::Tensor& x, bool nhwc) {
  const auto s = x.shape();
  PD_CHECK(s.size() == 4, "fast_bn: x must be [N, C, H, W] or [N, H, W, C]");
  PD_CHECK(x.is_cpu() && x.dtype() == paddle::DataType::FLOAT32, "fast_bn: x must be a float32 CPU tensor");
  return nhwc ? Shape{s[0], s[3], s[1] * s[2], true} : Shape{s[0], s[1], s[2] * s[3], false};
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

// f(i) for every index i of channel k in NCHW (its N blocks of H * W values)
template <class F>
void each(const Shape& s, int64_t k, F f) {
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t o = (i * s.c + k) * s.hw;
    for (int64_t j = 0; j < s.hw; ++j) f(o + j);
  }
}

// f(i, k) for every value: index i, channel k
template <class F>
void each_value(const Shape& s, F f) {
  if (!s.nhwc) {
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < s.c; ++k) each(s, k, [&](int64_t i) { f(i, k); });
    return;
  }
  const int64_t rows = s.n * s.hw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < s.c; ++k) f(r * s.c + k, k);
}

// J sums per channel: out[j * C + k] = the sum over channel k's values i of the j-th of f(i, k, v)'s
// J values v[0..J)
template <int J, class F>
std::vector<double> channel_sums(const Shape& s, F f) {
  if (!s.nhwc) {
    std::vector<double> out(J * s.c, 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < s.c; ++k) {
      double acc[J] = {};
      each(s, k, [&](int64_t i) {
        double v[J];
        f(i, k, v);
        for (int j = 0; j < J; ++j) acc[j] += v[j];
      });
      for (int j = 0; j < J; ++j) out[j * s.c + k] = acc[j];
    }
    return out;
  }
  const int64_t C = s.c;
  const int threads = pool_size();
  std::vector<double> part(size_t(threads) * J * C, 0.0);
  on_rows(s.n * s.hw, [&](int64_t r0, int64_t r1, int t) {
    double* acc = part.data() + size_t(t) * J * C;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < C; ++k) {
        double v[J];
        f(r * C + k, k, v);
        for (int j = 0; j < J; ++j) acc[j * C + k] += v[j];
      }
  });
  return total(part, threads, J * C);
}

// Per channel: the mean, the biased variance and 1 / sqrt(var + eps). The backward passes compute them
// again from x rather than take the forward's outputs: then the backward's only inputs are x, gamma and
// dy, and the second derivative owes gradients to those three alone (see the end of the file)
struct Stats {
  std::vector<double> mu, var, r;
};

Stats stats(const float* x, const Shape& s, float eps) {
  const double M = static_cast<double>(s.n * s.hw);
  Stats st{channel_sums<1>(s, [&](int64_t i, int64_t, double* v) { v[0] = x[i]; }), {}, {}};
  for (auto& m : st.mu) m /= M;
  st.var = channel_sums<1>(s, [&](int64_t i, int64_t k, double* v) { v[0] = (x[i] - st.mu[k]) * (x[i] - st.mu[k]); });
  st.r.resize(s.c);
  for (int64_t k = 0; k < s.c; ++k) {
    st.var[k] /= M;
    st.r[k] = 1.0 / std::sqrt(st.var[k] + eps);
  }
  return st;
}

}  // namespace

std::vector<paddle::Tensor> FastBnForward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                          const paddle::Tensor& beta, float eps, bool nhwc) {
  const Shape s = shape_of(x, nhwc);
  const float* px = x.data<float>();
  const float* pg = vec_ptr(gamma, s.c, "gamma");
  const float* pb = vec_ptr(beta, s.c, "beta");
  auto y = like(x.shape()), mean = like({s.c}), var = like({s.c});
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pv = var.data<float>();
  const Stats st = stats(px, s, eps);
  std::vector<double> scale(s.c);
  for (int64_t k = 0; k < s.c; ++k) {
    pm[k] = static_cast<float>(st.mu[k]);
    pv[k] = static_cast<float>(st.var[k]);
    scale[k] = st.r[k] * pg[k];
  }
  each_value(s, [&](int64_t i, int64_t k) { py[i] = static_cast<float>((px[i] - st.mu[k]) * scale[k] + pb[k]); });
  return {y, mean, var};
}

std::vector<paddle::Tensor> FastBnBackward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                           const paddle::Tensor& dy, float eps, bool nhwc) {
  const Shape s = shape_of(x, nhwc);
  const float* px = x.data<float>();
  const float* pg = vec_ptr(gamma, s.c, "gamma");
  const float* pdy = ptr(dy, s, "the output gradient");
  auto dx = like(x.shape()), dgamma = like({s.c}), dbeta = like({s.c});
  float* pdx = dx.data<float>();
  float* pdg = dgamma.data<float>();
  float* pdb = dbeta.data<float>();
  const double M = static_cast<double>(s.n * s.hw);
  const Stats st = stats(px, s, eps);
  const auto& mu = st.mu;
  const auto& r = st.r;
  // sum of g, sum of g xh
  const auto sums = channel_sums<2>(s, [&](int64_t i, int64_t k, double* v) {
    v[0] = pdy[i];
    v[1] = pdy[i] * (px[i] - mu[k]) * r[k];
  });
  std::vector<double> a(s.c), b(s.c), gr(s.c);
  for (int64_t k = 0; k < s.c; ++k) {
    a[k] = sums[k] / M;
    b[k] = sums[s.c + k] / M;
    gr[k] = pg[k] * r[k];
    pdg[k] = static_cast<float>(sums[s.c + k]);
    pdb[k] = static_cast<float>(sums[k]);
  }
  each_value(s, [&](int64_t i, int64_t k) {
    pdx[i] = static_cast<float>(gr[k] * (pdy[i] - a[k] - (px[i] - mu[k]) * r[k] * b[k]));
  });
  return {dx, dgamma, dbeta};
}

std::vector<paddle::Tensor> FastBnDoubleBackward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                                 const paddle::Tensor& dy,
                                                 const paddle::optional<paddle::Tensor>& ddx,
                                                 const paddle::optional<paddle::Tensor>& ddgamma,
                                                 const paddle::optional<paddle::Tensor>& ddbeta, float eps,
                                                 bool nhwc) {
  const Shape s = shape_of(x, nhwc);
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
  const Stats st = stats(px, s, eps);
  const auto& mu = st.mu;
  const auto& r = st.r;
  // sums of g, g xh, ddx, ddx xh, ddx g
  const auto sums = channel_sums<5>(s, [&](int64_t i, int64_t k, double* v) {
    const double xh = (px[i] - mu[k]) * r[k], d = pddx ? pddx[i] : 0.0;
    v[0] = pdy[i];
    v[1] = pdy[i] * xh;
    v[2] = d;
    v[3] = d * xh;
    v[4] = d * pdy[i];
  });
  const int64_t C = s.c;
  std::vector<double> a(C), b(C), m(C), p(C), q(C);
  for (int64_t k = 0; k < C; ++k) {
    a[k] = sums[k] / M;
    b[k] = sums[C + k] / M;
    m[k] = sums[2 * C + k] / M;
    p[k] = sums[3 * C + k] / M;
    q[k] = sums[4 * C + k] / M - a[k] * m[k];
    pgg[k] = static_cast<float>(M * r[k] * (q[k] - b[k] * p[k]));
  }
  each_value(s, [&](int64_t i, int64_t k) {
    const double xh = (px[i] - mu[k]) * r[k], d = pddx ? pddx[i] : 0.0, ga = pdy[i] - a[k];
    const double gam = pg[k], ddg = pddg ? pddg[k] : 0.0, ddb = pddb ? pddb[k] : 0.0, rk = r[k];
    pgdy[i] = static_cast<float>(gam * rk * (d - m[k] - xh * p[k]) + ddg * xh + ddb);
    pgx[i] = static_cast<float>(gam * rk * rk * (3.0 * xh * b[k] * p[k] - xh * q[k] - ga * p[k] - b[k] * (d - m[k])) +
                                ddg * rk * (ga - xh * b[k]));
  });
  return {gx, ggamma, gdy};
}

std::vector<std::vector<int64_t>> FastBnInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& g,
                                                   const std::vector<int64_t>& b, float eps, bool nhwc) {
  return {x, g, g};
}

std::vector<paddle::DataType> FastBnInferDtype(const paddle::DataType& x, const paddle::DataType& g,
                                               const paddle::DataType& b) {
  return {x, x, x};
}

PD_BUILD_OP(fast_bn)
    .Inputs({"X", "Gamma", "Beta"})
    .Outputs({"Out", "Mean", "Var"})
    .Attrs({"eps: float", "nhwc: bool"})
    .SetKernelFn(PD_KERNEL(FastBnForward))
    .SetInferShapeFn(PD_INFER_SHAPE(FastBnInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FastBnInferDtype));

PD_BUILD_GRAD_OP(fast_bn)
    .Inputs({"X", "Gamma", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Gamma"), paddle::Grad("Beta")})
    .Attrs({"eps: float", "nhwc: bool"})
    .SetKernelFn(PD_KERNEL(FastBnBackward));

// every input of the backward gets its gradient (an input left out cut the layers below it off a
// penalty's gradient in Paddle's engine, see act.cc)
PD_BUILD_DOUBLE_GRAD_OP(fast_bn)
    .Inputs({"X", "Gamma", paddle::Grad("Out"), paddle::Optional(paddle::Grad(paddle::Grad("X"))),
             paddle::Optional(paddle::Grad(paddle::Grad("Gamma"))),
             paddle::Optional(paddle::Grad(paddle::Grad("Beta")))})
    .Outputs({paddle::Grad("X"), paddle::Grad("Gamma"), paddle::Grad(paddle::Grad("Out"))})
    .Attrs({"eps: float", "nhwc: bool"})
    .SetKernelFn(PD_KERNEL(FastBnDoubleBackward));
