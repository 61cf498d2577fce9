// Analytic parameter count mirroring the module layout of transformer.cc and attention_rnn.cc.
#include "core/model_size.h"

#include "core/vocabulary.h"

namespace cadenza {

StatusOr<int64_t> CountModelParameters(const ModelConfig& config) {
  Status s = ValidateModelConfig(config, "model");
  if (!s.ok()) return s;
  const int64_t V = config.vocab_size > 0 ? config.vocab_size : Vocabulary::Get().size();
  const int64_t D = config.d_model;
  const int64_t L = config.layers;
  int64_t n = V * D;                               // embedding
  if (!config.tie_embeddings) n += D * V;          // output projection, no bias
  if (config.family == "transformer") {
    const int64_t F = config.ff_dim;
    const int64_t block = 2 * D                    // ln1
                          + D * 3 * D + 3 * D      // qkv
                          + D * D + D              // proj
                          + 2 * D                  // ln2
                          + D * F + F              // ff1
                          + F * D + D;             // ff2
    n += L * block + 2 * D;                        // blocks, ln_final
    return n;
  }
  const int64_t H = config.hidden;
  const int64_t gates = config.family == "lstm" ? 4 : 3;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t in = l == 0 ? D : H;
    n += gates * H * (in + H + 2);                 // weight_ih, weight_hh, bias_ih, bias_hh
  }
  if (config.attention == "general") n += H * H;                    // W_a, no bias
  if (config.attention == "additive") n += (H * H + H) + H * H + H;  // W_q with bias, W_k, v
  n += 2 * H * D + D;                              // combine
  return n;
}

}  // namespace cadenza
