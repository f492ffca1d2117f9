// ReLU and LeakyReLU as a Paddle custom operator for CPU training: forward, backward and the second
// derivative a gradient penalty takes, each one vectorised pass over the tensor on the OpenMP pool
// Paddle's kernels and its oneDNN already run on (the wheel's libiomp5). Paddle's CPU kernels for
// these are Eigen expressions on one thread: its LeakyReLU backward took 1.4 ms for a [64, 64, 16, 16]
// tensor, PyTorch's 0.25 ms, a tenth of DCGAN's float32 step in all. Built with dnnl_conv.cc by
// paddle_gan/ops/build.py. bfloat16 tensors too (forward and backward: the activations of a channels-last
// chain in bfloat16, ops.channels_last), computed in float32 and rounded; and to_float32, where such a
// chain hands its output on.
//
// The same numbers as Paddle's kernels (float32):
//   forward   y = max(x, alpha x)                           (alpha = 0: ReLU)
//   backward  dx = dy * m(x),  m = 1 where x >= 0 (LeakyReLU) / x > 0 (ReLU, Paddle's out > 0), else alpha
//   second    the backward is linear in dy and, almost everywhere, constant in x: the gradient of
//             dy is ddx * m'(x), m' = 1 where x > 0 else alpha (Paddle's double-grad kernels take x > 0
//             for both, so at x = 0 LeakyReLU's differs from its backward), that of x is zero (as theirs).
#include <cstdint>
#include <vector>

#include "simd.h"  // KERNEL, load / store of float32 and bfloat16
#include "paddle/extension.h"

namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per OpenMP chunk; small tensors stay on one thread

bool low(const paddle::Tensor& t) { return t.dtype() == paddle::DataType::BFLOAT16; }

void check(const paddle::Tensor& t, const char* what, bool bf16_too = true) {
  PD_CHECK(t.is_cpu() && (t.dtype() == paddle::DataType::FLOAT32 || (bf16_too && low(t))), "fast_act: ", what,
           bf16_too ? " must be a float32 or bfloat16 CPU tensor" : " must be a float32 CPU tensor");
}

// po = pv * (px > 0 or, unless strict, px == 0 ? 1 : alpha) over [s, e): the backward (v = dy) and the
// second derivative (v = ddx) are the same pass
template <class T>
inline void masked_span(const T* px, const T* pv, T* po, int64_t s, int64_t e, float alpha, bool strict) {
  if (strict) {
    for (int64_t i = s; i < e; ++i) {  // both sides computed: a select the compiler vectorises (x 1 is exact)
      const float v = load(pv, i), lo = v * alpha;
      store(po, i, load(px, i) > 0.f ? v : lo);
    }
  } else {
    for (int64_t i = s; i < e; ++i) {
      const float v = load(pv, i), lo = v * alpha;
      store(po, i, load(px, i) >= 0.f ? v : lo);
    }
  }
}

// po = max(px, alpha px), or with relu max(px, 0) (+0 for negative x, as Paddle's; not 0 * x = -0)
template <class T>
inline void act_span(const T* px, T* po, int64_t s, int64_t e, float alpha, bool relu) {
  if (relu) {
    for (int64_t i = s; i < e; ++i) {
      const float x = load(px, i);
      store(po, i, x > 0.f ? x : 0.f);
    }
  } else {
    for (int64_t i = s; i < e; ++i) {
      const float x = load(px, i), ax = alpha * x;
      store(po, i, x > ax ? x : ax);
    }
  }
}

using bf16 = uint16_t;
KERNEL void masked_f32(const float* x, const float* v, float* o, int64_t s, int64_t e, float a, bool strict) {
  masked_span(x, v, o, s, e, a, strict);
}
KERNEL void masked_bf16(const bf16* x, const bf16* v, bf16* o, int64_t s, int64_t e, float a, bool strict) {
  masked_span(x, v, o, s, e, a, strict);
}
KERNEL void act_f32(const float* x, float* o, int64_t s, int64_t e, float a, bool relu) {
  act_span(x, o, s, e, a, relu);
}
KERNEL void act_bf16(const bf16* x, bf16* o, int64_t s, int64_t e, float a, bool relu) {
  act_span(x, o, s, e, a, relu);
}
KERNEL void widen(const bf16* x, float* o, int64_t s, int64_t e) {
  for (int64_t i = s; i < e; ++i) store(o, i, load(x, i));
}
KERNEL void narrow(const float* x, bf16* o, int64_t s, int64_t e) {
  for (int64_t i = s; i < e; ++i) store(o, i, load(x, i));
}

// f(s, e) over [0, n) in chunks of kGrain on the pool
template <class F>
void chunks(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > 2 * kGrain)
  for (int64_t s = 0; s < n; s += kGrain) f(s, s + kGrain < n ? s + kGrain : n);
}

template <class T>
const T* in(const paddle::Tensor& t) {
  return reinterpret_cast<const T*>(t.data());
}
template <class T>
T* out(paddle::Tensor& t) {
  return reinterpret_cast<T*>(t.data());
}

paddle::Tensor masked(const paddle::Tensor& x, const paddle::Tensor& v, float alpha, bool strict) {
  check(x, "x");
  check(v, "gradient");
  PD_CHECK(x.numel() == v.numel() && x.dtype() == v.dtype(), "fast_act: x and its gradient differ in size or type");
  auto o = paddle::empty(x.shape(), x.dtype(), paddle::CPUPlace());
  chunks(x.numel(), [&](int64_t s, int64_t e) {
    if (low(x))
      masked_bf16(in<bf16>(x), in<bf16>(v), out<bf16>(o), s, e, alpha, strict);
    else
      masked_f32(in<float>(x), in<float>(v), out<float>(o), s, e, alpha, strict);
  });
  return o;
}

}  // namespace

std::vector<paddle::Tensor> FastActForward(const paddle::Tensor& x, float alpha, bool relu) {
  check(x, "x");
  auto o = paddle::empty(x.shape(), x.dtype(), paddle::CPUPlace());
  if (low(x))
    chunks(x.numel(), [&](int64_t s, int64_t e) { act_bf16(in<bf16>(x), out<bf16>(o), s, e, alpha, relu); });
  else
    chunks(x.numel(), [&](int64_t s, int64_t e) { act_f32(in<float>(x), out<float>(o), s, e, alpha, relu); });
  return {o};
}

std::vector<paddle::Tensor> FastActBackward(const paddle::Tensor& x, const paddle::Tensor& dy, float alpha,
                                            bool relu) {
  return {masked(x, dy, relu ? 0.f : alpha, relu)};
}

// (the zero gradient of x is returned, not left out: without that edge Paddle's engine never reaches the
// layers below, which then got no gradient from a penalty at all)
std::vector<paddle::Tensor> FastActDoubleBackward(const paddle::Tensor& x, const paddle::Tensor& ddx, float alpha,
                                                  bool relu) {
  check(x, "x (second derivative)", false);
  return {paddle::full(x.shape(), 0.f, paddle::DataType::FLOAT32, paddle::CPUPlace()),
          masked(x, ddx, relu ? 0.f : alpha, true)};
}

std::vector<std::vector<int64_t>> FastActInferShape(const std::vector<int64_t>& x, float alpha, bool relu) {
  return {x};
}

std::vector<paddle::DataType> FastActInferDtype(const paddle::DataType& x) { return {x}; }

PD_BUILD_OP(fast_act)
    .Inputs({"X"})
    .Outputs({"Out"})
    .Attrs({"alpha: float", "relu: bool"})
    .SetKernelFn(PD_KERNEL(FastActForward))
    .SetInferShapeFn(PD_INFER_SHAPE(FastActInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FastActInferDtype));

PD_BUILD_GRAD_OP(fast_act)
    .Inputs({"X", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"alpha: float", "relu: bool"})
    .SetKernelFn(PD_KERNEL(FastActBackward));

PD_BUILD_DOUBLE_GRAD_OP(fast_act)
    .Inputs({"X", paddle::Grad(paddle::Grad("X"))})
    .Outputs({paddle::Grad("X"), paddle::Grad(paddle::Grad("Out"))})
    .Attrs({"alpha: float", "relu: bool"})
    .SetKernelFn(PD_KERNEL(FastActDoubleBackward));

// bfloat16 -> float32 where a chain in bfloat16 hands its output on (ops.channels_last); the backward
// rounds the float32 gradient to bfloat16. Paddle's CPU cast kernel took 1.6 ms for the 0.5 M gradients
// of a [64, 8, 8, 128] map on one thread.
// bfloat16 activations are once differentiable: a second derivative through them stops with this line
// rather than losing its terms (a penalised D keeps float32 activations)
std::vector<paddle::Tensor> NoSecondDerivative(const paddle::Tensor& x) {
  PD_THROW("no second derivative through bfloat16 activations (a penalised D keeps float32 ones)");
}

std::vector<paddle::Tensor> ToFloat32Forward(const paddle::Tensor& x) {
  PD_CHECK(x.is_cpu() && low(x), "to_float32: x must be a bfloat16 CPU tensor");
  auto o = paddle::empty(x.shape(), paddle::DataType::FLOAT32, paddle::CPUPlace());
  chunks(x.numel(), [&](int64_t s, int64_t e) { widen(in<bf16>(x), out<float>(o), s, e); });
  return {o};
}

std::vector<paddle::Tensor> ToFloat32Backward(const paddle::Tensor& dy) {
  check(dy, "gradient", false);
  auto o = paddle::empty(dy.shape(), paddle::DataType::BFLOAT16, paddle::CPUPlace());
  chunks(dy.numel(), [&](int64_t s, int64_t e) { narrow(in<float>(dy), out<bf16>(o), s, e); });
  return {o};
}
std::vector<paddle::DataType> ToFloat32InferDtype(const paddle::DataType& x) { return {paddle::DataType::FLOAT32}; }

std::vector<std::vector<int64_t>> ToFloat32InferShape(const std::vector<int64_t>& x) { return {x}; }

PD_BUILD_OP(to_float32)
    .Inputs({"X"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(ToFloat32Forward))
    .SetInferShapeFn(PD_INFER_SHAPE(ToFloat32InferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(ToFloat32InferDtype));

PD_BUILD_GRAD_OP(to_float32)
    .Inputs({paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .SetKernelFn(PD_KERNEL(ToFloat32Backward));

PD_BUILD_DOUBLE_GRAD_OP(to_float32)
    .Inputs({paddle::Grad(paddle::Grad("X"))})
    .Outputs({paddle::Grad(paddle::Grad("Out"))})
    .SetKernelFn(PD_KERNEL(NoSecondDerivative));

// a + b on bfloat16 tensors (a residual sum inside a chain in bfloat16: Paddle has no bfloat16 add on
// the CPU), computed in float32 and rounded; the gradient reaches both unchanged.
namespace {
KERNEL void add_bf16(const bf16* a, const bf16* b, bf16* o, int64_t s, int64_t e) {
  for (int64_t i = s; i < e; ++i) store(o, i, load(a, i) + load(b, i));
}
}  // namespace

std::vector<paddle::Tensor> AddLowForward(const paddle::Tensor& a, const paddle::Tensor& b) {
  PD_CHECK(a.is_cpu() && b.is_cpu() && low(a) && low(b) && a.shape() == b.shape(),
           "add_low: a and b must be bfloat16 CPU tensors of one shape");
  auto o = paddle::empty(a.shape(), paddle::DataType::BFLOAT16, paddle::CPUPlace());
  chunks(a.numel(), [&](int64_t s, int64_t e) { add_bf16(in<bf16>(a), in<bf16>(b), out<bf16>(o), s, e); });
  return {o};
}

// (two copies: a gradient handed back as the incoming one's own buffer was added to in place by Paddle's
// engine where A had other consumers)
std::vector<paddle::Tensor> AddLowBackward(const paddle::Tensor& dy) {
  return {dy.copy_to(dy.place(), false), dy.copy_to(dy.place(), false)};
}


std::vector<std::vector<int64_t>> AddLowInferShape(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  return {a};
}

std::vector<paddle::DataType> AddLowInferDtype(const paddle::DataType& a, const paddle::DataType& b) { return {a}; }

PD_BUILD_OP(add_low)
    .Inputs({"A", "B"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(AddLowForward))
    .SetInferShapeFn(PD_INFER_SHAPE(AddLowInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(AddLowInferDtype));

PD_BUILD_GRAD_OP(add_low)
    .Inputs({paddle::Grad("Out")})
    .Outputs({paddle::Grad("A"), paddle::Grad("B")})
    .SetKernelFn(PD_KERNEL(AddLowBackward));

PD_BUILD_DOUBLE_GRAD_OP(add_low)
    .Inputs({paddle::Grad(paddle::Grad("A"))})
    .Outputs({paddle::Grad(paddle::Grad("Out"))})
    .SetKernelFn(PD_KERNEL(NoSecondDerivative));
