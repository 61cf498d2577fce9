// Kernel building blocks shared by the hand-written CPU kernels (dropout, fused LSTM, causal attention).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/hash.h"

// The 64-byte vector helpers below are inline and never cross a library boundary, so GCC's -Wpsabi note that
// their ABI differs without AVX-512 does not apply; the files that include this header build with -Wno-psabi.

namespace cadenza::kernel {

// Each kernel is compiled for AVX-512 (x86-64-v4), AVX2 and plain x86-64 and picked at load time, so the binary
// runs on any x86-64 and uses the widest vectors there; the vectorizer is on for these functions at -O2 too.
#define CADENZA_VECTOR_CLONES                                              \
  __attribute__((target_clones("arch=x86-64-v4", "avx2", "default"),      \
                 optimize("tree-vectorize", "vect-cost-model=dynamic")))

// Cephes' expf: range reduction by ln 2 and a degree-5 polynomial, ~1 ulp; 0 below -87 (masked scores).
// Written without floor or libm calls so that loops over it vectorize (libm's expf would keep them scalar).
template <typename F, typename I>
inline F ExpT(F x) {
  x = x < -87.0f ? F{} - 87.0f : (x > 88.0f ? F{} + 88.0f : x);
  // x / ln 2 rounded to the nearest integer n by adding 1.5 * 2^23.
  const F shifted = x * 1.44269504088896341f + 12582912.0f;
  const F n = shifted - 12582912.0f;
  const F r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F e = p * r * r + r + 1.0f;
  I bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits - 0x4B400000 + 127) << 23;  // n + 127 in the exponent field: 2^n
  F scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

inline float Exp(float x) { return x < -87.0f ? 0.0f : ExpT<float, int32_t>(x); }
inline float Sigmoid(float x) { return 1.0f / (1.0f + Exp(-x)); }
inline float Tanh(float x) { return 2.0f / (1.0f + Exp(-2.0f * x)) - 1.0f; }

// 16 floats (one AVX-512 register; two AVX2 registers in that clone). may_alias + aligned(4): loads and stores
// through plain float pointers.
typedef float V16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t I16 __attribute__((vector_size(64), aligned(4), may_alias));

inline V16 Load(const float* p) { return *reinterpret_cast<const V16*>(p); }
inline void Store(float* p, V16 v) { *reinterpret_cast<V16*>(p) = v; }
inline V16 Splat(float x) { return V16{} + x; }
inline float Sum(V16 v) {
  float s = 0;
  for (int i = 0; i < 16; ++i) s += v[i];
  return s;
}
inline float Max(V16 v) {
  float m = v[0];
  for (int i = 1; i < 16; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline V16 Exp(V16 x) {
  const V16 e = ExpT<V16, I16>(x);
  return x < -87.0f ? V16{} : e;
}

// Dropout's counter-based randomness: element i of the SplitMix64 stream started at `seed`.
inline uint64_t Mix(uint64_t seed, uint64_t i) { return SplitMix64At(seed, i); }
// Element i is dropped when the high 32 bits of Mix(seed, i) fall below p * 2^32.
inline uint32_t DropThreshold(double p) {
  const double t = p * 4294967296.0;
  return t >= 4294967295.0 ? 4294967295u : static_cast<uint32_t>(t);
}
inline bool Kept(uint64_t seed, uint64_t i, uint32_t threshold) {
  return static_cast<uint32_t>(Mix(seed, i) >> 32) >= threshold;
}

}  // namespace cadenza::kernel
