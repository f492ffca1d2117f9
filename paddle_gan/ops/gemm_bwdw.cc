// The weight gradient of a (transposed) convolution in bfloat16 as one matrix product on oneDNN's
// matmul (im2col), for dnnl_conv.cc. oneDNN's own bfloat16 backward-weights kernel (brgconv_bwd_w on
// AMX) first transposes its inputs into pairs along the reduction (N x H x W) and is no faster than the
// float32 one at DCGAN's sizes: forward + weight gradient of [64, 128, 8, 8] -> 256 (k4, s2) took 13.3 ms
// with it, 5.5 ms with this (2-core Sapphire Rapids, benchmarks/bench_bwd_weights.py). On maps of 16 x 16
// and more oneDNN's kernel is the faster: dnnl_conv.cc's gemm_weights picks.
//
// A convolution's weight gradient is dW[o, i, kh, kw] = sum over n, oh, ow of
// g[n, o, oh, ow] * img[n, i, oh*s - p + kh, ow*s - p + kw] (zero outside the image), with img the
// convolution's input and g its output gradient. A transposed convolution's is the same sum with the
// roles swapped (img = its output gradient, g = its input; its weight is [Cin, Cout, K, K]). As a
// product: R[o, (kh, kw, i)] = g^T [o, rows] x cols [rows, (kh, kw, i)], rows = (n, oh, ow), cols
// the windows of img laid side by side (im2col, on bfloat16 channels-last copies of the two), R
// float32; then one reorder into Paddle's weight layout. Rows are taken in chunks so cols stays under
// kMaxCols elements, the chunks summed into R by the matmul (a sum post-op).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"

using dnnl::memory;
using dt = memory::data_type;

namespace {

constexpr int64_t kMaxCols = int64_t(1) << 20;  // bfloat16 elements of one chunk's im2col buffer (2 MB: as fast
                                               // as 16 MB chunks or faster, measured)

dnnl::matmul& product(const dnnl::engine& eng, int64_t m, int64_t k, int64_t n, bool accumulate) {
  static std::unordered_map<std::string, std::unique_ptr<dnnl::matmul>> cache;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const std::string key =
      std::to_string(m) + "," + std::to_string(k) + "," + std::to_string(n) + (accumulate ? "+" : "");
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
  memory::desc a({m, k}, dt::bf16, memory::dims{1, m}), b({k, n}, dt::bf16, memory::dims{n, 1}),
      c({m, n}, dt::f32, memory::dims{n, 1});
  auto mm = std::make_unique<dnnl::matmul>(dnnl::matmul::primitive_desc(eng, a, b, c, attr));
  auto& ref = *mm;
  cache.emplace(key, std::move(mm));
  return ref;
}

}  // namespace

// img, g: bfloat16 channels-last memories (logical dims N, C, H, W); dw: the float32 weight in Paddle's
// layout (logical dims o, i, K, K: [Cout, Cin] of a convolution, whose img is its input and g its output
// gradient; [Cout, Cin] of the transposed convolution's primitive, i.e. Paddle's [Cin, Cout] weight,
// whose img is its output gradient and g its input).
void gemm_backward_weights(dnnl::stream& strm, const memory& img, const memory& g, int K, int s, int p,
                           bool transposed, const memory& dw) {
  const auto& eng = dw.get_engine();
  const auto id = img.get_desc().get_dims(), gd = g.get_desc().get_dims();
  const int64_t N = id[0], C = id[1], H = id[2], W = id[3];
  const int64_t Cg = gd[1], Hg = gd[2], Wg = gd[3];
  const int64_t kkc = int64_t(K) * K * C, rows = N * Hg * Wg;
  const int64_t chunk = std::max<int64_t>(1, std::min(rows, kMaxCols / kkc));
  const auto* src = static_cast<const uint16_t*>(img.get_data_handle());
  const auto* gp = static_cast<const uint16_t*>(g.get_data_handle());
  memory cols({{chunk, kkc}, dt::bf16, memory::dims{kkc, 1}}, eng);
  memory R({{Cg, kkc}, dt::f32, memory::dims{kkc, 1}}, eng);
  auto* cp = static_cast<uint16_t*>(cols.get_data_handle());
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n_rows = std::min(chunk, rows - r0);
#pragma omp parallel for schedule(static)
    for (int64_t r = r0; r < r0 + n_rows; ++r) {  // im2col: row r = (n, oh, ow), columns (kh, kw, c)
      const int64_t n = r / (Hg * Wg), oh = r / Wg % Hg, ow = r % Wg;
      uint16_t* out = cp + (r - r0) * kkc;
      for (int kh = 0; kh < K; ++kh) {
        const int64_t ih = oh * s - p + kh;
        for (int kw = 0; kw < K; ++kw, out += C) {
          const int64_t iw = ow * s - p + kw;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W)
            std::memset(out, 0, C * sizeof(uint16_t));
          else
            std::memcpy(out, src + ((n * H + ih) * W + iw) * C, C * sizeof(uint16_t));
        }
      }
    }
    // g as the product's left factor: its rows r0.. of [rows, Cg], read transposed
    memory a({{Cg, n_rows}, dt::bf16, memory::dims{1, Cg}}, eng, const_cast<uint16_t*>(gp + r0 * Cg));
    memory b({{n_rows, kkc}, dt::bf16, memory::dims{kkc, 1}}, eng, cp);
    product(eng, Cg, n_rows, kkc, r0 > 0)
        .execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, R}});
  }
  // R is [o][kh][kw][i] of the weight's logical (o, i, kh, kw): o = Cg for a convolution; a transposed
  // convolution's primitive has o = C (img's channels) and i = Cg
  const memory::dims st =
      transposed ? memory::dims{1, kkc, int64_t(K) * C, C} : memory::dims{kkc, 1, int64_t(K) * C, C};
  memory r(memory::desc(dw.get_desc().get_dims(), dt::f32, st), eng, R.get_data_handle());
  dnnl::reorder(r, dw).execute(strm, r, const_cast<memory&>(dw));
}
