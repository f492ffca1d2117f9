// What the elementwise operators (act.cc, bn_low.cc) share: KERNEL, a loop compiled for AVX-512, AVX2 and
// the baseline x86-64, the one this CPU runs picked when the library loads (the package builds without
// -march: a cached build may meet another CPU; GCC's target_clones); and bfloat16 values as they read and
// write them, widened to float32 exactly and narrowed back rounding to nearest even (NaN stays NaN), as
// oneDNN and PyTorch convert. Elementwise float32 results do not depend on the vector width.
#pragma once
#include <cstdint>
#include <cstring>

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
