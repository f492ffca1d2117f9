// bfloat16 convolutions as matrix products: im2col + oneDNN's matmul (AMX / AVX512-BF16 brgemm),
// included by dnnl_conv.cc for the bfloat16 path (train.amp=bfloat16 on a CPU).
//
// Why: at the sizes of these GANs (4x4 to 16x16 maps, 64-256 channels, batch 64) oneDNN 3.6's
// bfloat16 convolution primitives run below their float32 ones on AMX (measured on an Intel Xeon,
// [64,128,8,8] -> 256, k4 s2: backward-weights 13.6 ms in bfloat16 against 7.6 ms in float32), while
// the same work as one matrix product of [1024 x 2048] by [2048 x 256] takes ~2.5 ms in bfloat16.
//
// Layouts: the image is converted once to bfloat16 NHWC; a row of the column matrix is one output
// pixel, its columns (kh, kw, c) (so each tap is a contiguous run of C values); the weight
// [O, C, K, K] becomes bfloat16 [O, K, K, C]. For a convolution with input C x H x W, output
// O x Ho x Wo, M = N Ho Wo, Kd = K K C:
//   forward          Y[M, O]   = cols[M, Kd] x Wb[O, Kd]^T         (then to NCHW, + bias)
//   backward-data    dcols[M, Kd] = dY[M, O] x Wb[O, Kd]           (then col2im into NHWC, to NCHW)
//   backward-weights dW[O, Kd] = dY^T[O, M] x cols[M, Kd]          (then to [O, C, K, K]; db = sum dY)
// A transposed convolution is the convolution that maps its output back to its input, with the roles
// of forward and backward-data exchanged (dnnl_conv.cc does that). Products are float32-accumulated
// and written in float32, as the convolution primitives did; batches whose column matrix would pass
// kColsBytes are done in chunks of samples (backward-weights sums the chunks in the product).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace gemm {

using bf16 = uint16_t;
constexpr int64_t kColsBytes = 64 << 20;

inline bf16 to_bf16(float f) {  // round to nearest even, as oneDNN's reorders (branch-free: vectorised)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;  // a NaN stays a NaN
  return static_cast<bf16>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

// dst[c * rows + r] = f(src[r * cols + c], c): a [rows, cols] matrix transposed, in 16 x 16 tiles
template <class S, class D, class F>
inline void transpose(const S* src, D* dst, int64_t rows, int64_t cols, F f) {
  constexpr int64_t T = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += T)
    for (int64_t c0 = 0; c0 < cols; c0 += T) {
      const int64_t r1 = std::min(rows, r0 + T), c1 = std::min(cols, c0 + T);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = f(src[r * cols + c], c);
    }
}

// Scratch buffers that stay allocated between calls (slot 0-3 of this thread): fresh multi-megabyte
// vectors on every call cost a page fault per 4 kB (and a zero fill), which two threads then take
// turns at; that made the first version of this path slower on two threads than on one.
template <class T>
T* scratch(int slot, int64_t count) {
  thread_local std::vector<std::unique_ptr<char[]>> bufs(4);
  thread_local std::vector<int64_t> sizes(4, 0);
  const int64_t bytes = count * static_cast<int64_t>(sizeof(T));
  if (sizes[slot] < bytes) {
    bufs[slot].reset(new char[bytes]);
    sizes[slot] = bytes;
  }
  return reinterpret_cast<T*>(bufs[slot].get());
}

// a convolution: input [N, C, H, W] -> output [N, O, Ho, Wo], weight [O, C, K, K], stride s, left/top
// padding pl (the right/bottom padding is whatever makes Ho, Wo)
struct Geo {
  int64_t N, C, H, W, O, K, s, pl, Ho, Wo;
  int64_t kd() const { return K * K * C; }
  int64_t pix() const { return Ho * Wo; }
  // samples per chunk: the column matrix of a chunk stays within kColsBytes (or, for tests,
  // $PADDLE_GAN_GEMM_CHUNK_BYTES)
  int64_t chunk() const {
    const char* env = std::getenv("PADDLE_GAN_GEMM_CHUNK_BYTES");
    const int64_t cap = env ? std::max<int64_t>(1, std::atoll(env)) : kColsBytes;
    return std::max<int64_t>(1, std::min<int64_t>(N, cap / (pix() * kd() * 2)));
  }
};

// matmul C[M, N] (float32) = A[M, K] x B[K, N] (bfloat16), B stored as [K, N] or (bt) as [N, K];
// accumulate: C += the product
struct MM {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c;
};

inline MM& matmul(dnnl::engine& eng, int64_t M, int64_t K, int64_t N, bool bt, bool accumulate) {
  static std::unordered_map<std::string, std::unique_ptr<MM>> cache;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::string key = std::to_string(M) + "," + std::to_string(K) + "," + std::to_string(N) + (bt ? "t" : "") +
                    (accumulate ? "+" : "");
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  auto m = std::make_unique<MM>();
  m->a = dnnl::memory::desc({M, K}, dt::bf16, tag::ab);
  m->b = dnnl::memory::desc({K, N}, dt::bf16, bt ? tag::ba : tag::ab);
  m->c = dnnl::memory::desc({M, N}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
  m->prim = dnnl::matmul(dnnl::matmul::primitive_desc(eng, m->a, m->b, m->c, attr));
  auto& ref = *m;
  cache.emplace(key, std::move(m));
  return ref;
}

inline void run(dnnl::engine& eng, dnnl::stream& strm, MM& m, const bf16* A, const bf16* B, float* C) {
  dnnl::memory a(m.a, eng, const_cast<bf16*>(A)), b(m.b, eng, const_cast<bf16*>(B)), c(m.c, eng, C);
  m.prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  strm.wait();
}

// samples [n0, n0 + nc) of x (NCHW float32) -> bfloat16 NHWC
inline void to_nhwc(const Geo& g, const float* x, int64_t n0, int64_t nc, bf16* out) {
  const int64_t HW = g.H * g.W, C = g.C;
#pragma omp parallel for
  for (int64_t n = 0; n < nc; ++n) {
    transpose(x + (n0 + n) * C * HW, out + n * HW * C, C, HW, [](float v, int64_t) { return to_bf16(v); });
  }
}

// column matrix [nc Ho Wo, K K C] of nc samples from their NHWC image
inline void im2col(const Geo& g, const bf16* xh, int64_t nc, bf16* cols) {
  const int64_t C = g.C, K = g.K, kd = g.kd();
#pragma omp parallel for collapse(2)
  for (int64_t n = 0; n < nc; ++n)
    for (int64_t ho = 0; ho < g.Ho; ++ho)
      for (int64_t wo = 0; wo < g.Wo; ++wo) {
        bf16* row = cols + ((n * g.Ho + ho) * g.Wo + wo) * kd;
        for (int64_t kh = 0; kh < K; ++kh) {
          const int64_t ih = ho * g.s - g.pl + kh;
          for (int64_t kw = 0; kw < K; ++kw) {
            const int64_t iw = wo * g.s - g.pl + kw;
            bf16* dst = row + (kh * K + kw) * C;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
              std::memset(dst, 0, C * sizeof(bf16));
            else
              std::memcpy(dst, xh + ((n * g.H + ih) * g.W + iw) * C, C * sizeof(bf16));
          }
        }
      }
}

// weight [O, C, K, K] float32 -> bfloat16 [O, K, K, C]
inline std::vector<bf16> weight_rows(const Geo& g, const float* w) {
  const int64_t C = g.C, KK = g.K * g.K;
  std::vector<bf16> out(g.O * KK * C);
  for (int64_t o = 0; o < g.O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < KK; ++k) out[(o * KK + k) * C + c] = to_bf16(w[(o * C + c) * KK + k]);
  return out;
}

// y = conv(x, w) (+ b): x [N, C, H, W], y [N, O, Ho, Wo], both float32 NCHW
inline void forward(dnnl::engine& eng, dnnl::stream& strm, const Geo& g, const float* x, const float* w,
                    const float* b, float* y) {
  const int64_t nc = g.chunk(), P = g.pix(), kd = g.kd(), O = g.O;
  auto wb = weight_rows(g, w);
  bf16 *xh = scratch<bf16>(0, nc * g.H * g.W * g.C), *cols = scratch<bf16>(1, nc * P * kd);
  float* out = scratch<float>(2, nc * P * O);
  for (int64_t n0 = 0; n0 < g.N; n0 += nc) {
    const int64_t m = std::min(nc, g.N - n0);
    to_nhwc(g, x, n0, m, xh);
    im2col(g, xh, m, cols);
    run(eng, strm, matmul(eng, m * P, kd, O, true, false), cols, wb.data(), out);
#pragma omp parallel for
    for (int64_t n = 0; n < m; ++n) {  // [pixels, O] -> [O, pixels] (+ bias)
      if (b)
        transpose(out + n * P * O, y + (n0 + n) * O * P, P, O, [b](float v, int64_t o) { return v + b[o]; });
      else
        transpose(out + n * P * O, y + (n0 + n) * O * P, P, O, [](float v, int64_t) { return v; });
    }
  }
}

// dx = the gradient of conv(x, w) in x for output gradient dy (float32 NCHW, dx overwritten)
inline void backward_data(dnnl::engine& eng, dnnl::stream& strm, const Geo& g, const float* dy, const float* w,
                          float* dx) {
  const int64_t nc = g.chunk(), P = g.pix(), kd = g.kd(), O = g.O, C = g.C, K = g.K, HW = g.H * g.W;
  auto wb = weight_rows(g, w);
  bf16* rows = scratch<bf16>(0, nc * P * O);
  float *dcols = scratch<float>(1, nc * P * kd), *acc = scratch<float>(2, nc * HW * C);
  for (int64_t n0 = 0; n0 < g.N; n0 += nc) {
    const int64_t m = std::min(nc, g.N - n0);
#pragma omp parallel for
    for (int64_t n = 0; n < m; ++n)  // dY as [pixels, O] rows
      transpose(dy + (n0 + n) * O * P, rows + n * P * O, O, P, [](float v, int64_t) { return to_bf16(v); });
    run(eng, strm, matmul(eng, m * P, O, kd, false, false), rows, wb.data(), dcols);
#pragma omp parallel for
    for (int64_t n = 0; n < m; ++n) {  // col2im into NHWC, then NCHW; one sample per thread
      float* a = acc + n * HW * C;
      std::fill(a, a + HW * C, 0.f);
      for (int64_t ho = 0; ho < g.Ho; ++ho)
        for (int64_t wo = 0; wo < g.Wo; ++wo) {
          const float* row = dcols + ((n * g.Ho + ho) * g.Wo + wo) * kd;
          for (int64_t kh = 0; kh < K; ++kh) {
            const int64_t ih = ho * g.s - g.pl + kh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t kw = 0; kw < K; ++kw) {
              const int64_t iw = wo * g.s - g.pl + kw;
              if (iw < 0 || iw >= g.W) continue;
              float* d = a + (ih * g.W + iw) * C;
              const float* r = row + (kh * K + kw) * C;
              for (int64_t c = 0; c < C; ++c) d[c] += r[c];
            }
          }
        }
      transpose(a, dx + (n0 + n) * C * HW, HW, C, [](float v, int64_t) { return v; });
    }
  }
}

// dw (and db if not null) = the gradients of conv(x, w) (+ b) in w (and b) for output gradient dy
inline void backward_weights(dnnl::engine& eng, dnnl::stream& strm, const Geo& g, const float* x, const float* dy,
                             float* dw, float* db) {
  const int64_t nc = g.chunk(), P = g.pix(), kd = g.kd(), O = g.O, C = g.C, KK = g.K * g.K;
  bf16 *xh = scratch<bf16>(0, nc * g.H * g.W * C), *cols = scratch<bf16>(1, nc * P * kd);
  bf16* dyc = scratch<bf16>(2, O * nc * P);
  float* dwr = scratch<float>(3, O * kd);
  if (db) std::fill(db, db + O, 0.f);
  for (int64_t n0 = 0; n0 < g.N; n0 += nc) {
    const int64_t m = std::min(nc, g.N - n0);
    to_nhwc(g, x, n0, m, xh);
    im2col(g, xh, m, cols);
#pragma omp parallel for
    for (int64_t o = 0; o < O; ++o) {  // dY^T as [O, pixels]; the bias gradient from the same pass
      float s = 0.f;
      for (int64_t n = 0; n < m; ++n) {
        const float* src = dy + ((n0 + n) * O + o) * P;
        bf16* dst = dyc + o * m * P + n * P;
        for (int64_t i = 0; i < P; ++i) {
          dst[i] = to_bf16(src[i]);
          s += src[i];
        }
      }
      if (db) db[o] += s;
    }
    run(eng, strm, matmul(eng, O, m * P, kd, false, n0 > 0), dyc, cols, dwr);
  }
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < KK; ++k) dw[(o * C + c) * KK + k] = dwr[(o * KK + k) * C + c];
}

}  // namespace gemm
