// Sampling music from a trained model: grammar-constrained, seeded, batched, with primer continuation.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/generation.h"
#include "core/model/sequence_model.h"
#include "core/status.h"

namespace cadenza {

// Every sample is a complete sentence of the token grammar: the model's choice is masked to what may come next,
// and a sample cut by max_new_tokens is trimmed to its last complete event before EOS.
StatusOr<std::vector<GeneratedSample>> Generate(SequenceModelImpl& model, const GenerateOptions& options);

}  // namespace cadenza
