// Test helper: a YAML mapping flattened to dotted keys, for tests that compare a config's dump with its key list.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>

namespace cadenza::testing {

// Dotted key -> value (as flow YAML) of every scalar or list in `node`, nested mappings walked.
inline void FlattenYamlKeys(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>* out) {
  for (const auto& kv : node) {
    const std::string key = prefix + kv.first.as<std::string>();
    if (kv.second.IsMap()) {
      FlattenYamlKeys(kv.second, key + ".", out);
    } else {
      YAML::Emitter e;
      e << YAML::Flow << kv.second;
      (*out)[key] = e.c_str();
    }
  }
}

}  // namespace cadenza::testing
