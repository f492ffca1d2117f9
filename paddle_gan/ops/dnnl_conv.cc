// Convolution and transposed convolution (forward, and backward for data and weights) on oneDNN,
// as Paddle custom operators for dygraph training on CPU. Paddle's own CPU kernels run im2col +
// GEMM one sample at a time; the Paddle wheel ships oneDNN (libdnnl.so.3) but dygraph never calls
// it for these ops. Built on first use by paddle_gan/ops/__init__.py.
//
// Layouts as Paddle's: x [N, Cin, H, W]; conv weight [Cout, Cin, K, K] (oihw); transposed-conv
// weight [Cin, Cout, K, K] (iohw). Square kernels, one stride and one padding for both axes,
// output_padding (transposed) as extra bottom/right padding, no dilation or groups.
// Primitives are cached per shape; activations and weights are reordered to and from the blocked
// layouts oneDNN picks (format "any"), as PyTorch does for its oneDNN convolutions.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "paddle/extension.h"

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

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
  memory::desc src, wei, dst;  // plain (user) layouts
  dnnl::primitive_desc fwd_pd, bwd_d_pd, bwd_w_pd;
  dnnl::primitive fwd, bwd_d, bwd_w;
};

std::string key_of(bool tr, const memory::dims& x, const memory::dims& w, int s, int p, int op) {
  std::string k = tr ? "T" : "C";
  for (auto v : x) k += "," + std::to_string(v);
  k += "|";
  for (auto v : w) k += "," + std::to_string(v);
  return k + "|" + std::to_string(s) + "," + std::to_string(p) + "," + std::to_string(op);
}

struct Args {
  memory::desc src, wei, dst;
  memory::dims strides, pad_l, pad_r;
};

// forward, backward-data and backward-weights primitives of one (de)convolution
template <class Fwd, class BwdData, class BwdWeights>
void build(Prims& P, dnnl::algorithm alg, const Args& a) {
  auto f = typename Fwd::primitive_desc(eng(), dnnl::prop_kind::forward_training, alg, a.src, a.wei, a.dst,
                                        a.strides, a.pad_l, a.pad_r);
  auto bd = typename BwdData::primitive_desc(eng(), alg, a.src, a.wei, a.dst, a.strides, a.pad_l, a.pad_r, f);
  auto bw = typename BwdWeights::primitive_desc(eng(), alg, a.src, a.wei, a.dst, a.strides, a.pad_l, a.pad_r, f);
  P.fwd_pd = f;
  P.bwd_d_pd = bd;
  P.bwd_w_pd = bw;
  P.fwd = Fwd(f);
  P.bwd_d = BwdData(bd);
  P.bwd_w = BwdWeights(bw);
}

// x: [N, Cin, H, W]; w: conv [Cout, Cin, K, K] (oihw), transposed [Cin, Cout, K, K] (iohw)
Prims& prims(bool tr, const memory::dims& x, const memory::dims& w, int s, int p, int op) {
  static std::unordered_map<std::string, std::unique_ptr<Prims>> cache;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto key = key_of(tr, x, w, s, p, op);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  auto P = std::make_unique<Prims>();
  const int64_t N = x[0], H = x[2], W = x[3], K = w[2];
  const int64_t cin = x[1], cout = tr ? w[1] : w[0];
  const int64_t Ho = tr ? (H - 1) * s - 2 * p + K + op : (H + 2 * p - K) / s + 1;
  const int64_t Wo = tr ? (W - 1) * s - 2 * p + K + op : (W + 2 * p - K) / s + 1;
  memory::dims src_d = {N, cin, H, W}, dst_d = {N, cout, Ho, Wo}, wei_d = {cout, cin, K, K};
  memory::dims strides = {s, s}, pads = {p, p}, pads_r = {p - op, p - op};
  P->src = memory::desc(src_d, dt::f32, tag::nchw);
  P->dst = memory::desc(dst_d, dt::f32, tag::nchw);
  P->wei = memory::desc(wei_d, dt::f32, tr ? tag::iohw : tag::oihw);
  auto src_a = memory::desc(src_d, dt::f32, tag::any), dst_a = memory::desc(dst_d, dt::f32, tag::any);
  auto wei_a = memory::desc(wei_d, dt::f32, tag::any);
  auto a = Args{src_a, wei_a, dst_a, strides, pads, pads_r};
  if (tr) {
    build<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data, dnnl::deconvolution_backward_weights>(
        *P, dnnl::algorithm::deconvolution_direct, a);
  } else {
    build<dnnl::convolution_forward, dnnl::convolution_backward_data, dnnl::convolution_backward_weights>(
        *P, dnnl::algorithm::convolution_direct, a);
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

// a buffer in layout `have` whose contents end up in `user` after finish()
struct Out {
  memory user, m;
  Out(const memory& u, const memory::desc& have) : user(u), m(u.get_desc() == have ? u : memory(have, eng())) {}
  void finish() {
    if (m.get_data_handle() != user.get_data_handle()) dnnl::reorder(m, user).execute(strm(), m, user);
  }
};

memory::dims dims_of(const paddle::Tensor& t) {
  const std::vector<int64_t> s = t.shape();  // returned by value
  return memory::dims(s.begin(), s.end());
}

void check(const paddle::Tensor& x, const paddle::Tensor& w) {
  PD_CHECK(x.is_cpu() && w.is_cpu(), "dnnl_conv: CPU tensors only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32 && w.dtype() == paddle::DataType::FLOAT32, "dnnl_conv: float32 only");
  PD_CHECK(x.shape().size() == 4 && w.shape().size() == 4, "dnnl_conv: 4-D input and weight");
}

}  // namespace

std::vector<paddle::Tensor> DnnlConvForward(const paddle::Tensor& x_, const paddle::Tensor& w_, int stride, int pad,
                                            int out_pad, bool transposed, bool need_dx, bool need_dw) {
  check(x_, w_);
  auto& P = prims(transposed, dims_of(x_), dims_of(w_), stride, pad, out_pad);
  const memory::dims od = P.dst.get_dims();
  auto out = paddle::empty(std::vector<int64_t>(od.begin(), od.end()), paddle::DataType::FLOAT32, paddle::CPUPlace());
  memory src(P.src, eng(), const_cast<float*>(x_.data<float>()));
  memory wei(P.wei, eng(), const_cast<float*>(w_.data<float>()));
  memory dst(P.dst, eng(), out.data<float>());
  auto& pd = P.fwd_pd;
  memory s = as(src, pd.src_desc()), w = as(wei, pd.weights_desc());
  Out d(dst, pd.dst_desc());
  P.fwd.execute(strm(), {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d.m}});
  d.finish();
  strm().wait();
  return {out};
}

// need_dx / need_dw are known when the forward runs (x or the weight may not require a gradient,
// e.g. real images, or D's frozen weights in the G step); a gradient nobody reads is not computed
// and comes back uninitialised.
std::vector<paddle::Tensor> DnnlConvBackward(const paddle::Tensor& x_, const paddle::Tensor& w_,
                                             const paddle::Tensor& dy_, int stride, int pad, int out_pad,
                                             bool transposed, bool need_dx, bool need_dw) {
  auto& P = prims(transposed, dims_of(x_), dims_of(w_), stride, pad, out_pad);
  auto dx = paddle::empty(x_.shape(), paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto dw = paddle::empty(w_.shape(), paddle::DataType::FLOAT32, paddle::CPUPlace());
  PD_CHECK(dy_.is_cpu() && dy_.dtype() == paddle::DataType::FLOAT32, "dnnl_conv: float32 CPU gradient only");
  memory src(P.src, eng(), const_cast<float*>(x_.data<float>()));
  memory wei(P.wei, eng(), const_cast<float*>(w_.data<float>()));
  memory ddst(P.dst, eng(), const_cast<float*>(dy_.data<float>()));
  memory dsrc(P.src, eng(), dx.data<float>());
  memory dwei(P.wei, eng(), dw.data<float>());
  if (need_dx) {
    auto& pd = P.bwd_d_pd;
    memory g = as(ddst, pd.diff_dst_desc()), w = as(wei, pd.weights_desc());
    Out o(dsrc, pd.diff_src_desc());
    P.bwd_d.execute(strm(), {{DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, o.m}});
    o.finish();
  }
  if (need_dw) {
    auto& pd = P.bwd_w_pd;
    memory g = as(ddst, pd.diff_dst_desc()), s = as(src, pd.src_desc());
    Out o(dwei, pd.diff_weights_desc());
    P.bwd_w.execute(strm(), {{DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_DIFF_WEIGHTS, o.m}});
    o.finish();
  }
  strm().wait();
  return {dx, dw};
}

std::vector<std::vector<int64_t>> DnnlConvInferShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                                     int stride, int pad, int out_pad, bool transposed, bool need_dx,
                                                     bool need_dw) {
  const int64_t K = w[2], cout = transposed ? w[1] : w[0];
  auto o = [&](int64_t h) {
    return transposed ? (h - 1) * stride - 2 * pad + K + out_pad : (h + 2 * pad - K) / stride + 1;
  };
  return {{x[0], cout, o(x[2]), o(x[3])}};
}

std::vector<paddle::DataType> DnnlConvInferDtype(const paddle::DataType& x, const paddle::DataType& w) { return {x}; }

PD_BUILD_OP(dnnl_conv)
    .Inputs({"X", "W"})
    .Outputs({"Out"})
    .Attrs({"stride: int", "pad: int", "out_pad: int", "transposed: bool", "need_dx: bool", "need_dw: bool"})
    .SetKernelFn(PD_KERNEL(DnnlConvForward))
    .SetInferShapeFn(PD_INFER_SHAPE(DnnlConvInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(DnnlConvInferDtype));

PD_BUILD_GRAD_OP(dnnl_conv)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .Attrs({"stride: int", "pad: int", "out_pad: int", "transposed: bool", "need_dx: bool", "need_dw: bool"})
    .SetKernelFn(PD_KERNEL(DnnlConvBackward));
