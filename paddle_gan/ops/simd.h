// What the elementwise operators (act.cc, bn_low.cc, batchnorm.cc) share: KERNEL, a loop compiled for AVX-512,
// AVX2 and the baseline x86-64, the one this CPU runs picked when the library loads (the package builds without
// -march: a cached build may meet another CPU; GCC's target_clones); and bfloat16 values as they read and write
// them, widened to float32 exactly and narrowed back rounding to nearest even (NaN stays NaN), as oneDNN and
// PyTorch convert. Elementwise float32 results do not depend on the vector width. And on_rows, rows of a [rows,
// C] tensor shared out among the OpenMP pool that Paddle's kernels and its oneDNN use, and total, the per-thread
// partial sums of a channel added up in thread order.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#define KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))

inline float load(const float* p, int64_t i) { return p[i]; }
inline void store(float* p, int64_t i, float v) { p[i] = v; }
inline float load(const uint16_t* p, int64_t i) {
  const uint32_t u = uint32_t(p[i]) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline void store(uint16_t* p, int64_t i, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  p[i] = v != v ? uint16_t((u >> 16) | 0x40) : uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

inline int pool_size() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// f(thread's first row, its end, thread index) on every thread of the pool, the rows shared out in order
template <class F>
void on_rows(int64_t rows, F f) {
#pragma omp parallel num_threads(pool_size())
  {
    int t = 0, n = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    n = omp_get_num_threads();
#endif
    f(rows * t / n, rows * (t + 1) / n, t);
  }
}

// the per-thread partial sums (threads x width doubles) added up into width doubles, in thread order
inline std::vector<double> total(const std::vector<double>& part, int threads, int64_t width) {
  std::vector<double> out(width, 0.0);
  for (int t = 0; t < threads; ++t)
    for (int64_t k = 0; k < width; ++k) out[k] += part[size_t(t) * width + k];
  return out;
}
