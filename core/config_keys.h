// The keys of a config as users see them (`cadenza config keys`), without YAML: what core/config_fields.h's tables
// describe, for the command line and for tests.
#pragma once

#include <string>
#include <vector>

namespace cadenza {

// One key as `cadenza config keys` prints it.
struct ConfigKeyDoc {
  std::string key;            // dotted: train.warmup_steps
  std::string type;           // integer | number | seconds | true/false | string | list of strings | list of integers
  std::string default_value;  // as YAML
  std::string allowed;        // "1..256", "fp32 | bf16", "" = any value of the type
  std::string doc;
};
// One key a line (key, type, default, allowed) with its doc indented under it.
std::string FormatConfigKeys(const std::vector<ConfigKeyDoc>& keys);

// Every key of an experiment YAML (model.* included), from the field tables that parse and dump it
// (core/experiment_config.cc).
std::vector<ConfigKeyDoc> ExperimentConfigKeys();

}  // namespace cadenza
