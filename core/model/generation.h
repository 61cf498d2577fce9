// What generation takes and gives, without torch: shared by the sampler, the CLI and (later) the workers.
#pragma once

#include <cstdint>
#include <vector>

namespace cadenza {

struct GenerateOptions {
  std::vector<int32_t> primer;  // tokens to continue (kept in the output); empty = start from BOS
  int64_t max_new_tokens = 1024;  // hard cap on generated tokens per sample
  int64_t bars = 0;               // stop after this many new bars (0 = only max_new_tokens)
  double temperature = 1.0;       // 0 = greedy
  int64_t top_k = 0;              // keep the k most likely tokens (0 = all)
  double top_p = 1.0;             // nucleus: smallest set with this much probability (1 = all)
  uint64_t seed = 1;
  int64_t count = 1;              // samples, generated together as one batch
};

struct GeneratedSample {
  std::vector<int32_t> tokens;  // primer + continuation, ends with EOS; always decodes
  int64_t new_tokens = 0;
  double seconds = 0;           // wall time of the whole batch
};

}  // namespace cadenza
