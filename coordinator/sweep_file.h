// Reads a sweep file (configs/sweeps/*.yaml) into a SweepSpec: model files inlined, paths made absolute, every key
// checked. The coordinator reads no files: `cadenza submit --sweep` calls this and sends the result.
#pragma once

#include <string>

#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

// `base` is the experiment the sweep varies (its YAML text, with `model:` inlined). Errors name the file and key
// ("scale.yaml: models.lstm: cannot read ../models/lstm.yaml"). Relative paths are taken from the file's folder.
StatusOr<SweepSpec> LoadSweepFile(const std::string& path, const ExperimentSpec& base);

}  // namespace cadenza::coord
