// Convolution and transposed convolution on oneDNN, as Paddle custom operators for dygraph training
// on CPU: forward, backward (data, weights, bias) and the second derivative that gradient penalties
// need. Paddle's own CPU kernels run im2col + GEMM one sample at a time; the Paddle wheel ships
// oneDNN (libdnnl.so.3) but dygraph never calls it for these ops. Built on first use by
// paddle_gan/ops/__init__.py.
//
// Layouts as Paddle's: x [N, Cin, H, W] (with the nhwc attribute x and the output are [N, H, W, C]:
// ops.channels_last, no reorder of the activations around the primitives); conv weight [Cout, Cin, K, K] (oihw); transposed-conv
// weight [Cin, Cout, K, K] (iohw); bias [Cout]. Square kernels, one stride and one padding for both
// axes, output_padding (transposed) as extra bottom/right padding, no dilation or groups.
// Two operators: dnnl_conv (no bias) and dnnl_conv_bias (the bias added inside the primitive, its
// gradient from the backward-weights primitive: Paddle's broadcast add and its reduction were most
// of a ResNet step). Primitives are cached per shape; activations and weights are reordered to and
// from the blocked layouts oneDNN picks (format "any"), as PyTorch does for its oneDNN convolutions.
//
// Second derivative. The backward is dx = Bd(dy, W) and dW = Bw(x, dy), linear in each argument,
// so for incoming gradients ddx (of dx) and ddW (of dW):
//   grad of dy: ddy = F(ddx, W) + F(x, ddW) (+ ddb),  grad of W: Bw(ddx, dy),  grad of x: Bd(dy, ddW)
// with F the forward, all primitives this file already has. In bfloat16, Bw of small maps is one
// matrix product instead (gemm_bwdw.cc, chosen by gemm_weights below). A penalty on D's input gradient sends
// ddx only, so ddW is optional (and the grad of x is then zero).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "paddle/extension.h"
#include "simd.h"  // load of float32 and bfloat16

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

void gemm_backward_weights(dnnl::stream& strm, const memory& img, const memory& g, int K, int s, int p,
                           bool transposed, const memory& dw);  // gemm_bwdw.cc

namespace {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  static dnnl::stream s(eng());
  return s;
}

struct Prims {
  memory::desc src, wei, dst, bias;  // plain (user) layouts, always float32
  dnnl::primitive_desc fwd_pd, bwd_d_pd, bwd_w_pd;
  dnnl::primitive fwd, bwd_d, bwd_w;
  bool has_bias = false;
  bool tr = false, gemm_w = false;  // gemm_w: weight gradients by gemm_backward_weights
  int K = 0, s = 0, p = 0;
};

// Format "any" descriptors of one (de)convolution. In bfloat16 (train.amp on a CPU with bfloat16
// arithmetic) the primitives read bfloat16 images, weights and output gradients (reordered from the
// float32 tensors) and write float32 outputs and gradients, accumulating in float32: the weights,
// Adam, BatchNorm and the losses never leave float32.
struct Args {
  memory::desc src, wei, dst, diff_src, diff_wei, diff_dst, bias;
  memory::dims strides, pad_l, pad_r;
};

// forward, backward-data and backward-weights primitives of one (de)convolution, with or without bias
template <class Fwd, class BwdData, class BwdWeights>
void build(Prims& P, dnnl::algorithm alg, const Args& a, bool bias) {
  auto pk = dnnl::prop_kind::forward_training;
  auto f = bias ? typename Fwd::primitive_desc(eng(), pk, alg, a.src, a.wei, a.bias, a.dst, a.strides, a.pad_l, a.pad_r)
                : typename Fwd::primitive_desc(eng(), pk, alg, a.src, a.wei, a.dst, a.strides, a.pad_l, a.pad_r);
  auto bd = typename BwdData::primitive_desc(eng(), alg, a.diff_src, a.wei, a.diff_dst, a.strides, a.pad_l, a.pad_r, f);
  auto bw = bias ? typename BwdWeights::primitive_desc(eng(), alg, a.src, a.diff_wei, a.bias, a.diff_dst, a.strides,
                                                       a.pad_l, a.pad_r, f)
                 : typename BwdWeights::primitive_desc(eng(), alg, a.src, a.diff_wei, a.diff_dst, a.strides, a.pad_l,
                                                       a.pad_r, f);
  P.fwd_pd = f;
  P.bwd_d_pd = bd;
  P.bwd_w_pd = bw;
  P.fwd = Fwd(f);
  P.bwd_d = BwdData(bd);
  P.bwd_w = BwdWeights(bw);
}

// an output side of a (transposed) convolution with input side h
int64_t out_hw(int64_t h, int64_t K, int s, int p, int op, bool tr) {
  return tr ? (h - 1) * s - 2 * p + K + op : (h + 2 * p - K) / s + 1;
}

// Whether a convolution's weight gradient comes from gemm_backward_weights (gemm_bwdw.cc): in bfloat16
// where the gradient side of the product (a convolution's output, a transposed one's input) has at most
// 8 x 8 positions per map: 1.2-2.7x faster than oneDNN's kernel there (DCGAN's layers, the ResNet's 8 x 8
// and 4 x 4 blocks), slower on 16 x 16 and larger maps (measured one layer at a time in one process,
// benchmarks/bench_bwd_weights.py). PADDLE_GAN_BWDW=gemm or =onednn takes one of them everywhere (for
// that benchmark and the tests; read per call).
bool gemm_weights(bool bf16, int64_t g_positions) {
  if (!bf16) return false;
  const char* e = std::getenv("PADDLE_GAN_BWDW");
  const std::string want = e ? e : "";
  if (want == "gemm" || want == "onednn") return want == "gemm";
  return g_positions <= 64;
}

// x: [N, Cin, H, W]; w: conv [Cout, Cin, K, K] (oihw), transposed [Cin, Cout, K, K] (iohw)
Prims& prims(bool tr, const memory::dims& x, const memory::dims& w, int s, int p, int op, bool bias, bool bf16,
             bool nhwc, dt xt, dt yt) {
  static std::unordered_map<std::string, std::unique_ptr<Prims>> cache;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const bool gemm_w =  // the gradient side of the product: a transposed convolution's input, else the output
      gemm_weights(bf16, tr ? x[2] * x[3] : out_hw(x[2], w[2], s, p, op, tr) * out_hw(x[3], w[2], s, p, op, tr));
  std::string key = std::string(tr ? "T" : "C") + (bias ? "b" : "") + (bf16 ? "h" : "") + (nhwc ? "L" : "") +
                    (gemm_w ? "g" : "") + (xt == dt::bf16 ? "x" : "") + (yt == dt::bf16 ? "y" : "");
  for (auto v : x) key += "," + std::to_string(v);
  key += "|";
  for (auto v : w) key += "," + std::to_string(v);
  key += "|" + std::to_string(s) + "," + std::to_string(p) + "," + std::to_string(op);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  auto P = std::make_unique<Prims>();
  const int64_t N = x[0], H = x[2], W = x[3], K = w[2];
  const int64_t cin = x[1], cout = tr ? w[1] : w[0];
  const int64_t Ho = out_hw(H, K, s, p, op, tr), Wo = out_hw(W, K, s, p, op, tr);
  memory::dims src_d = {N, cin, H, W}, dst_d = {N, cout, Ho, Wo}, wei_d = {cout, cin, K, K};
  memory::dims strides = {s, s}, pads = {p, p}, pads_r = {p - op, p - op};
  const tag act = nhwc ? tag::nhwc : tag::nchw;  // the activations' layout in Paddle's tensors
  P->src = memory::desc(src_d, xt, act);
  P->dst = memory::desc(dst_d, yt, act);
  P->wei = memory::desc(wei_d, dt::f32, tr ? tag::iohw : tag::oihw);
  P->bias = memory::desc({cout}, dt::f32, tag::x);
  P->has_bias = bias;
  P->tr = tr, P->K = int(K), P->s = s, P->p = p;
  P->gemm_w = gemm_w;
  const dt low = bf16 ? dt::bf16 : dt::f32;  // what the primitives read; they write the tensors' own types
  auto any = [](const memory::dims& d, dt t) { return memory::desc(d, t, tag::any); };
  // channels-last activations already in the type a primitive wants are what oneDNN's nhwc kernels
  // read: asked for as they are
  auto acts = [&](const memory::dims& d, dt t, dt user) {
    return nhwc && t == user ? memory::desc(d, t, tag::nhwc) : any(d, t);
  };
  auto a = Args{acts(src_d, low, xt), any(wei_d, low), acts(dst_d, yt, yt), acts(src_d, xt, xt), any(wei_d, dt::f32),
                acts(dst_d, low, yt), P->bias, strides, pads, pads_r};
  if (tr) {
    build<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data, dnnl::deconvolution_backward_weights>(
        *P, dnnl::algorithm::deconvolution_direct, a, bias);
  } else {
    build<dnnl::convolution_forward, dnnl::convolution_backward_data, dnnl::convolution_backward_weights>(
        *P, dnnl::algorithm::convolution_direct, a, bias);
  }
  auto& ref = *P;
  cache.emplace(key, std::move(P));
  return ref;
}

// `user` in the layout the primitive wants (a reorder into a scratch buffer when they differ)
memory as(const memory& user, const memory::desc& want) {
  if (user.get_desc() == want) return user;
  memory m(want, eng());
  dnnl::reorder(user, m).execute(strm(), const_cast<memory&>(user), m);
  return m;
}

// One user tensor that several primitives of one call read (dy in the backward, ddx in the second
// derivative): reordered once per layout asked for, not once per primitive (a copy: same numbers).
struct Staged {
  memory user;
  std::vector<memory> made;
  Staged(const memory::desc& d, void* p) : user(d, eng(), p) {}
  memory in(const memory::desc& want) {
    if (user.get_desc() == want) return user;
    for (auto& m : made)
      if (m.get_desc() == want) return m;
    made.push_back(as(user, want));
    return made.back();
  }
};

// a buffer in layout `have` whose contents end up in `user` after finish()
struct Out {
  memory user, m;
  Out(const memory& u, const memory::desc& have) : user(u), m(u.get_desc() == have ? u : memory(have, eng())) {}
  void finish() {
    if (m.get_data_handle() != user.get_data_handle()) dnnl::reorder(m, user).execute(strm(), m, user);
  }
};

float* ptr(const paddle::Tensor& t) { return const_cast<float*>(t.data<float>()); }
void* any_ptr(const paddle::Tensor& t) { return const_cast<void*>(t.data()); }

paddle::Tensor empty_like(const std::vector<int64_t>& shape, paddle::DataType type = paddle::DataType::FLOAT32) {
  return paddle::empty(shape, type, paddle::CPUPlace());
}

// an activation's (or its gradient's) type: float32, or bfloat16 between the layers of a channels-last
// chain in bfloat16 (ops.channels_last)
dt type_of(const paddle::Tensor& t, const char* what) {
  PD_CHECK(t.is_cpu() && (t.dtype() == paddle::DataType::FLOAT32 || t.dtype() == paddle::DataType::BFLOAT16),
           "dnnl_conv: ", what, " must be a float32 or bfloat16 CPU tensor");
  return t.dtype() == paddle::DataType::BFLOAT16 ? dt::bf16 : dt::f32;
}
paddle::DataType paddle_type(dt t) { return t == dt::bf16 ? paddle::DataType::BFLOAT16 : paddle::DataType::FLOAT32; }

void check(const paddle::Tensor& t, const char* what) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32, "dnnl_conv: ", what, " must be a float32 CPU tensor");
}

// y = F(x, w) (+ b)
void forward(Prims& P, Staged& x, float* w, float* b, void* y) {
  auto& pd = P.fwd_pd;
  memory wei(P.wei, eng(), w), dst(P.dst, eng(), y);
  memory s = x.in(pd.src_desc()), wm = as(wei, pd.weights_desc());
  Out d(dst, pd.dst_desc());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, d.m}};
  if (P.has_bias) args[DNNL_ARG_BIAS] = memory(P.bias, eng(), b);
  P.fwd.execute(strm(), args);
  d.finish();
}

// dx = Bd(dy, w)
void backward_data(Prims& P, Staged& dy, float* w, void* dx) {
  auto& pd = P.bwd_d_pd;
  memory wei(P.wei, eng(), w), dsrc(P.src, eng(), dx);
  memory g = dy.in(pd.diff_dst_desc()), wm = as(wei, pd.weights_desc());
  Out o(dsrc, pd.diff_src_desc());
  P.bwd_d.execute(strm(), {{DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, o.m}});
  o.finish();
}

// db[c] = the sum of rows x C values p over the rows
void row_sums(const uint16_t* p, int64_t rows, int64_t C, float* db) {
  std::fill(db, db + C, 0.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) db[c] += load(p, r * C + c);
}

// db = the sum of dy over N, H, W, from the bfloat16 channels-last copy of dy the product read (as
// oneDNN's kernel sums its bfloat16 dy: the same bias gradient whichever of the two a layer takes)
void bias_grad(const Prims& P, const memory& dy_low, float* db) {
  const auto d = P.dst.get_dims();  // N, C, H, W
  row_sums(static_cast<const uint16_t*>(dy_low.get_data_handle()), d[0] * d[2] * d[3], d[1], db);
}

// dw = Bw(x, dy) (and db = the sum of dy over N, H, W)
void backward_weights(Prims& P, Staged& x, Staged& dy, float* dw, float* db) {
  if (P.gemm_w) {
    memory dwei(P.wei, eng(), dw);
    auto low = [](const memory::desc& d) { return memory::desc(d.get_dims(), dt::bf16, tag::nhwc); };
    memory xs = x.in(low(P.src)), g = dy.in(low(P.dst));
    // the image side is a convolution's input, a transposed one's output gradient (gemm_bwdw.cc)
    gemm_backward_weights(strm(), P.tr ? g : xs, P.tr ? xs : g, P.K, P.s, P.p, P.tr, dwei);
    if (P.has_bias) bias_grad(P, g, db);
    return;
  }
  auto& pd = P.bwd_w_pd;
  memory dwei(P.wei, eng(), dw);
  memory g = dy.in(pd.diff_dst_desc()), s = x.in(pd.src_desc());
  Out o(dwei, pd.diff_weights_desc());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_DIFF_WEIGHTS, o.m}};
  if (P.has_bias) args[DNNL_ARG_DIFF_BIAS] = memory(P.bias, eng(), db);
  P.bwd_w.execute(strm(), args);
  o.finish();
}

// a tensor's dims as oneDNN takes them, N, C, H, W, whatever its layout ([N, H, W, C] when nhwc)
memory::dims logical(const std::vector<int64_t>& x, bool nhwc) {
  return nhwc ? memory::dims{x[0], x[3], x[1], x[2]} : memory::dims(x.begin(), x.end());
}

Prims& prims_of(const paddle::Tensor& x, const paddle::Tensor& w, int s, int p, int op, bool tr, bool bias,
                bool bf16, bool nhwc, bool low_out) {
  const dt xt = type_of(x, "input");
  check(w, "weight");
  PD_CHECK(bf16 || (xt == dt::f32 && !low_out), "dnnl_conv: bfloat16 activations outside bfloat16 mode");
  PD_CHECK(x.shape().size() == 4 && w.shape().size() == 4, "dnnl_conv: 4-D input and weight");
  try {
    return prims(tr, logical(x.shape(), nhwc), logical(w.shape(), false), s, p, op, bias, bf16, nhwc, xt,
                 low_out ? dt::bf16 : dt::f32);
  } catch (const dnnl::error& e) {  // e.g. bfloat16 on a CPU without bfloat16 arithmetic
    PD_THROW("dnnl_conv: oneDNN has no ", bf16 ? "bfloat16 " : "", "primitive for this convolution here (", e.what(),
             ")");
  }
}

std::vector<int64_t> out_shape(const std::vector<int64_t>& x, const std::vector<int64_t>& w, int s, int p, int op,
                               bool tr, bool nhwc) {
  const int64_t K = w[2], cout = tr ? w[1] : w[0];
  auto o = [&](int64_t h) { return out_hw(h, K, s, p, op, tr); };
  if (nhwc) return {x[0], o(x[1]), o(x[2]), cout};
  return {x[0], cout, o(x[2]), o(x[3])};
}

std::vector<paddle::Tensor> fwd(const paddle::Tensor& x, const paddle::Tensor& w, const paddle::Tensor* b, int s,
                                int p, int op, bool tr, bool bf16, bool nhwc, bool low_out) {
  auto& P = prims_of(x, w, s, p, op, tr, b != nullptr, bf16, nhwc, low_out);
  auto y = empty_like(out_shape(x.shape(), w.shape(), s, p, op, tr, nhwc), paddle_type(P.dst.get_data_type()));
  Staged xs(P.src, any_ptr(x));
  forward(P, xs, ptr(w), b ? ptr(*b) : nullptr, any_ptr(y));
  strm().wait();
  return {y};
}

// Set on this thread by ops.inputs_only() around a paddle.grad(D(x), x) that reads x's gradient alone
// (a gradient penalty's first derivative): backward passes then leave the weights' and biases' gradients
// out, as PyTorch's autograd.grad does by its output mask. Paddle's engine tells a custom operator's
// backward nothing of which of its outputs are wanted.
thread_local bool inputs_only = false;

}  // namespace

extern "C" int paddle_gan_inputs_only(int on) {
  const int before = inputs_only;
  inputs_only = on != 0;
  return before;
}

namespace {

// Whether every value of t is zero (+0 or -0, float32 or bfloat16), looking no further than its first
// nonzero value (for an ordinary gradient, its first)
bool all_zero(const paddle::Tensor& t) {
  const int64_t n = t.numel();
  if (t.dtype() == paddle::DataType::BFLOAT16) {
    const uint16_t* p = static_cast<const uint16_t*>(t.data());
    for (int64_t i = 0; i < n; ++i)
      if (p[i] & 0x7fffu) return false;
  } else {
    const uint32_t* p = static_cast<const uint32_t*>(t.data());
    for (int64_t i = 0; i < n; ++i)
      if (p[i] & 0x7fffffffu) return false;
  }
  return true;
}

void fill_zero(paddle::Tensor& t) {
  std::memset(t.data(), 0, t.numel() * (t.dtype() == paddle::DataType::BFLOAT16 ? 2 : 4));
}

// need_dx / need_dw are known when the forward runs (x or the weight and bias may not require a gradient,
// e.g. real images, or D's frozen weights in the G step); a gradient nobody reads is not computed
// and comes back uninitialised. A gradient of zeros gives zeros without a primitive: what a penalty's
// second derivative sends back into the forward graph of D(x) it was taken on (a convolution's
// double derivative owes x the gradient Bd(dy, ddW), zero without a ddW, and Paddle's engine then runs
// that graph's whole backward on zeros: for WGAN-GP's interpolates, a backward that nothing reads).
std::vector<paddle::Tensor> bwd(const paddle::Tensor& x, const paddle::Tensor& w, const paddle::Tensor& dy, int s,
                                int p, int op, bool tr, bool need_dx, bool need_dw, bool bias, bool bf16, bool nhwc,
                                bool low_out) {
  auto& P = prims_of(x, w, s, p, op, tr, bias, bf16, nhwc, low_out);
  PD_CHECK(type_of(dy, "gradient") == P.dst.get_data_type(),
           "dnnl_conv: the gradient's type differs from the output's");
  auto dx = empty_like(x.shape(), x.dtype()), dw = empty_like(w.shape());
  auto db = empty_like({bias ? (tr ? w.shape()[1] : w.shape()[0]) : 1});
  need_dw = need_dw && !inputs_only;
  if (all_zero(dy)) {
    for (auto* t : {need_dx ? &dx : nullptr, need_dw ? &dw : nullptr, need_dw && bias ? &db : nullptr})
      if (t) fill_zero(*t);
  } else {
    Staged xs(P.src, any_ptr(x)), g(P.dst, any_ptr(dy));
    if (need_dx) backward_data(P, g, ptr(w), any_ptr(dx));
    if (need_dw) backward_weights(P, xs, g, dw.data<float>(), db.data<float>());
    strm().wait();
  }
  if (bias) return {dx, dw, db};
  return {dx, dw};
}

// the second derivative (see the top of the file): returns the gradients of x, w and dy
std::vector<paddle::Tensor> bwd2(const paddle::Tensor& x, const paddle::Tensor& w, const paddle::Tensor& dy,
                                 const paddle::optional<paddle::Tensor>& ddx, const paddle::optional<paddle::Tensor>& ddw,
                                 const paddle::optional<paddle::Tensor>& ddb, int s, int p, int op, bool tr,
                                 bool bf16, bool nhwc, bool low_out) {
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32 && !low_out,
           "dnnl_conv: no second derivative through bfloat16 activations (a penalised D keeps float32 ones)");
  auto& P = prims_of(x, w, s, p, op, tr, false, bf16, nhwc, low_out);
  check(dy, "gradient");
  auto gx = empty_like(x.shape()), gw = empty_like(w.shape()), gdy = empty_like(dy.shape());
  float* out = gdy.data<float>();
  const int64_t n = gdy.numel();
  bool have = false;
  Staged g(P.dst, ptr(dy));
  if (ddx) {  // ddy = F(ddx, W); grad of W = Bw(ddx, dy)
    check(*ddx, "second-order gradient");
    Staged dd(P.src, ptr(*ddx));
    forward(P, dd, ptr(w), nullptr, out);
    backward_weights(P, dd, g, gw.data<float>(), nullptr);
    have = true;
  } else {
    std::fill(gw.data<float>(), gw.data<float>() + gw.numel(), 0.f);
  }
  if (ddw) {  // ddy += F(x, ddW); grad of x = Bd(dy, ddW)
    check(*ddw, "second-order gradient");
    auto t = empty_like(dy.shape());
    Staged xs(P.src, ptr(x));
    forward(P, xs, ptr(*ddw), nullptr, t.data<float>());
    backward_data(P, g, ptr(*ddw), gx.data<float>());
    strm().wait();
    const float* tp = t.data<float>();
    for (int64_t i = 0; i < n; ++i) out[i] = have ? out[i] + tp[i] : tp[i];
    have = true;
  } else {
    std::fill(gx.data<float>(), gx.data<float>() + gx.numel(), 0.f);
  }
  strm().wait();
  if (!have) std::fill(out, out + n, 0.f);
  if (ddb) {  // ddy += ddb, broadcast over N, H, W
    check(*ddb, "second-order gradient");
    const float* bp = ddb->data<float>();
    const auto d = dy.shape();
    const int64_t C = nhwc ? d[3] : d[1], HW = d[2] * (nhwc ? d[1] : d[3]);
    for (int64_t i = 0; i < n; ++i) out[i] += bp[nhwc ? i % C : (i / HW) % C];
  }
  return {gx, gw, gdy};
}

}  // namespace

std::vector<paddle::Tensor> DnnlConvForward(const paddle::Tensor& x, const paddle::Tensor& w, int stride, int pad,
                                            int out_pad, bool transposed, bool need_dx, bool need_dw, bool bf16,
                                            bool nhwc, bool low_out) {
  return fwd(x, w, nullptr, stride, pad, out_pad, transposed, bf16, nhwc, low_out);
}

std::vector<paddle::Tensor> DnnlConvBackward(const paddle::Tensor& x, const paddle::Tensor& w,
                                             const paddle::Tensor& dy, int stride, int pad, int out_pad,
                                             bool transposed, bool need_dx, bool need_dw, bool bf16,
                                             bool nhwc, bool low_out) {
  return bwd(x, w, dy, stride, pad, out_pad, transposed, need_dx, need_dw, false, bf16, nhwc, low_out);
}

std::vector<paddle::Tensor> DnnlConvDoubleBackward(const paddle::Tensor& x, const paddle::Tensor& w,
                                                   const paddle::Tensor& dy,
                                                   const paddle::optional<paddle::Tensor>& ddx,
                                                   const paddle::optional<paddle::Tensor>& ddw, int stride, int pad,
                                                   int out_pad, bool transposed, bool need_dx, bool need_dw,
                                                   bool bf16, bool nhwc, bool low_out) {
  return bwd2(x, w, dy, ddx, ddw, paddle::none, stride, pad, out_pad, transposed, bf16, nhwc, low_out);
}

std::vector<paddle::Tensor> DnnlConvBiasForward(const paddle::Tensor& x, const paddle::Tensor& w,
                                                const paddle::Tensor& b, int stride, int pad, int out_pad,
                                                bool transposed, bool need_dx, bool need_dw, bool bf16,
                                                bool nhwc, bool low_out) {
  check(b, "bias");
  return fwd(x, w, &b, stride, pad, out_pad, transposed, bf16, nhwc, low_out);
}

std::vector<paddle::Tensor> DnnlConvBiasBackward(const paddle::Tensor& x, const paddle::Tensor& w,
                                                 const paddle::Tensor& dy, int stride, int pad, int out_pad,
                                                 bool transposed, bool need_dx, bool need_dw, bool bf16,
                                                 bool nhwc, bool low_out) {
  return bwd(x, w, dy, stride, pad, out_pad, transposed, need_dx, need_dw, true, bf16, nhwc, low_out);
}

std::vector<paddle::Tensor> DnnlConvBiasDoubleBackward(const paddle::Tensor& x, const paddle::Tensor& w,
                                                       const paddle::Tensor& dy,
                                                       const paddle::optional<paddle::Tensor>& ddx,
                                                       const paddle::optional<paddle::Tensor>& ddw,
                                                       const paddle::optional<paddle::Tensor>& ddb, int stride,
                                                       int pad, int out_pad, bool transposed, bool need_dx,
                                                       bool need_dw, bool bf16, bool nhwc, bool low_out) {
  return bwd2(x, w, dy, ddx, ddw, ddb, stride, pad, out_pad, transposed, bf16, nhwc, low_out);
}

std::vector<std::vector<int64_t>> DnnlConvInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                                     int stride, int pad, int out_pad, bool transposed, bool need_dx,
                                                     bool need_dw, bool bf16, bool nhwc, bool low_out) {
  return {out_shape(x, w, stride, pad, out_pad, transposed, nhwc)};
}

std::vector<std::vector<int64_t>> DnnlConvBiasInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                                         const std::vector<int64_t>& b, int stride, int pad,
                                                         int out_pad, bool transposed, bool need_dx, bool need_dw,
                                                         bool bf16, bool nhwc, bool low_out) {
  return {out_shape(x, w, stride, pad, out_pad, transposed, nhwc)};
}

paddle::DataType out_type(bool low_out) { return low_out ? paddle::DataType::BFLOAT16 : paddle::DataType::FLOAT32; }

std::vector<paddle::DataType> DnnlConvInferDtype(const paddle::DataType& x, const paddle::DataType& w, int stride,
                                                 int pad, int out_pad, bool transposed, bool need_dx, bool need_dw,
                                                 bool bf16, bool nhwc, bool low_out) {
  return {out_type(low_out)};
}

std::vector<paddle::DataType> DnnlConvBiasInferDtype(const paddle::DataType& x, const paddle::DataType& w,
                                                     const paddle::DataType& b, int stride, int pad, int out_pad,
                                                     bool transposed, bool need_dx, bool need_dw, bool bf16, bool nhwc,
                                                     bool low_out) {
  return {out_type(low_out)};
}

#define CONV_ATTRS \
  {"stride: int", "pad: int", "out_pad: int", "transposed: bool", "need_dx: bool", "need_dw: bool", "bf16: bool", \
   "nhwc: bool", "low_out: bool"}

PD_BUILD_OP(dnnl_conv)
    .Inputs({"X", "W"})
    .Outputs({"Out"})
    .Attrs(CONV_ATTRS)
    .SetKernelFn(PD_KERNEL(DnnlConvForward))
    .SetInferShapeFn(PD_INFER_SHAPE(DnnlConvInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(DnnlConvInferDtype));

PD_BUILD_GRAD_OP(dnnl_conv)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .Attrs(CONV_ATTRS)
    .SetKernelFn(PD_KERNEL(DnnlConvBackward));

PD_BUILD_DOUBLE_GRAD_OP(dnnl_conv)
    .Inputs({"X", "W", paddle::Grad("Out"), paddle::Optional(paddle::Grad(paddle::Grad("X"))),
             paddle::Optional(paddle::Grad(paddle::Grad("W")))})
    .Outputs({paddle::Grad("X"), paddle::Grad("W"), paddle::Grad(paddle::Grad("Out"))})
    .Attrs(CONV_ATTRS)
    .SetKernelFn(PD_KERNEL(DnnlConvDoubleBackward));

PD_BUILD_OP(dnnl_conv_bias)
    .Inputs({"X", "W", "B"})
    .Outputs({"Out"})
    .Attrs(CONV_ATTRS)
    .SetKernelFn(PD_KERNEL(DnnlConvBiasForward))
    .SetInferShapeFn(PD_INFER_SHAPE(DnnlConvBiasInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(DnnlConvBiasInferDtype));

PD_BUILD_GRAD_OP(dnnl_conv_bias)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W"), paddle::Grad("B")})
    .Attrs(CONV_ATTRS)
    .SetKernelFn(PD_KERNEL(DnnlConvBiasBackward));

PD_BUILD_DOUBLE_GRAD_OP(dnnl_conv_bias)
    .Inputs({"X", "W", paddle::Grad("Out"), paddle::Optional(paddle::Grad(paddle::Grad("X"))),
             paddle::Optional(paddle::Grad(paddle::Grad("W"))), paddle::Optional(paddle::Grad(paddle::Grad("B")))})
    .Outputs({paddle::Grad("X"), paddle::Grad("W"), paddle::Grad(paddle::Grad("Out"))})
    .Attrs(CONV_ATTRS)
    .SetKernelFn(PD_KERNEL(DnnlConvBiasDoubleBackward));
