// SplitMix64 (Steele, Lea and Flood, 2014): the one mixer of seeds and hashes in cadenza. Identical on every
// platform and compiler, unlike std:: distributions: splits, subsets, shuffles, primers, synthetic tunes and dropout
// all draw from it.
#pragma once

#include <cstdint>

namespace cadenza {

// The SplitMix64 finaliser: a bijection of 64-bit values whose every output bit depends on every input bit.
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;  // SplitMix64's increment

// The next value of the SplitMix64 stream whose state is *state.
inline uint64_t SplitMix64Next(uint64_t* state) { return Mix64(*state += kGoldenGamma); }

// Element i (0-based) of the SplitMix64 stream that starts at `seed`, without walking the stream.
inline uint64_t SplitMix64At(uint64_t seed, uint64_t i) { return Mix64(seed + (i + 1) * kGoldenGamma); }

// The top 53 bits as a double in [0, 1): exact, so the same on every machine.
inline double UnitInterval(uint64_t x) { return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace cadenza
