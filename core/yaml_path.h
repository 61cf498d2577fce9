// Setting a dotted key ("train.lr") inside a YAML mapping: shared by key=value overrides and sweep expansion.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "core/status.h"

namespace cadenza {

// Sets `dotted` (parts separated by '.') in the mapping `root` to `value`, creating the mappings on the way.
// An existing part on the way that is not a mapping is INVALID_ARGUMENT naming it ("name is not a mapping").
Status SetYamlPath(YAML::Node root, const std::string& dotted, const YAML::Node& value);

}  // namespace cadenza
