// Model factory and helpers shared by both families.
#include "core/model/sequence_model.h"

#include <cmath>

#include "core/model/attention_rnn.h"
#include "core/model/transformer.h"

namespace cadenza {

int64_t SequenceModelImpl::NumParameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

void InitEmbedding(torch::nn::Embedding& embedding, int64_t d_model) {
  torch::NoGradGuard no_grad;
  embedding->weight.normal_(0.0, 1.0 / std::sqrt(double(d_model)));
}

SequenceModel MakeModel(const ModelConfig& config) {
  if (config.family == "transformer") return std::make_shared<TransformerModel>(config);
  return std::make_shared<AttentionRnnModel>(config);
}

}  // namespace cadenza
