// Trainable-parameter count of a model config, computed analytically (torch-free: the coordinator links it).
#pragma once

#include <cstdint>

#include "core/experiment_config.h"
#include "core/status.h"

namespace cadenza {

// The exact number of trainable parameters of the model `m` describes, equal to what the LibTorch model built
// from it holds (CountParameters in core/model/model_api.h, which builds the model). vocab_size comes from the
// tokenizer's Vocabulary when m.vocab_size is 0. Invalid configs (ValidateModelConfig) are errors.
//   transformer: V D + layers (2 LN + qkv + proj + 2 LN + ff1 + ff2) + final LN (+ D V untied); positions are
//                a buffer, not parameters.
//   lstm/gru:    V D + gates (4 or 3) x H x (in + H + 2) per layer (in = D for the first layer, H above)
//                + attention (general: H^2; additive: 2 H^2 + 2 H; dot: 0) + combine (2 H D + D) (+ D V untied).
StatusOr<int64_t> CountModelParameters(const ModelConfig& m);

}  // namespace cadenza
