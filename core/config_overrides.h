// `key=value` overrides of an experiment (`cadenza train EXP.yaml train.steps=300 model.dropout=0.2`).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

// Applies each `dotted.key=value` (the value read as YAML: 300, 0.2, [64, 128], true) to the experiment YAML
// `yaml_text`, whose `model:` must be a mapping (inlined), and returns the new text. A malformed override is
// INVALID_ARGUMENT naming it; unknown keys and bad values are found by the experiment parser afterwards, which names
// the key ("train.stepz: unknown key (did you mean train.steps?)").
StatusOr<std::string> ApplyOverrides(const std::string& yaml_text, const std::vector<std::string>& overrides);

}  // namespace cadenza
