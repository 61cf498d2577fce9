// The one way configs are read from YAML (experiments, the coordinator's config, sweep files): every error names
// the file and the dotted key, a key the config does not have is refused with the nearest one it has, a key given
// twice is refused (yaml-cpp would keep both and read the first), and numbers must be finite.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace cadenza {

// Levenshtein distance between two keys.
size_t EditDistance(const std::string& a, const std::string& b);
// The candidate nearest to `key`: within 3 edits (1 for a key under 6 letters, 2 under 9), or one that `key` begins;
// "" when there is none.
std::string NearestKey(const std::string& key, const std::set<std::string>& candidates);

class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // INVALID_ARGUMENT "FILE: KEY: WHAT".
  Status Error(const std::string& key, const std::string& what) const;

  // Refuses keys of the mapping `node` (at dotted `path`, "" for the top level) outside `allowed`, so that a typo
  // never falls back to a default silently: "FILE: train.warmup_step: unknown key (did you mean
  // train.warmup_steps?; expected one of: ...)". Also refuses a key given twice and a node that is not a mapping.
  Status OnlyKeys(const YAML::Node& node, const std::string& path, const std::set<std::string>& allowed) const;

  // Reads node[key] into *out when present (absent: *out unchanged). `prefix` is the dotted path of `node` with a
  // trailing dot ("train."; "" at the top level), for the error: "FILE: train.lr: expected a number, found 'x'".
  template <typename T>
  Status Get(const YAML::Node& node, const std::string& prefix, const char* key, T* out) const {
    const YAML::Node v = node[key];
    if (!v) return Status::Ok();
    try {
      *out = v.as<T>();
    } catch (const YAML::Exception&) {
      return Error(prefix + key, "expected " + TypeName<T>() + ", found " + Found(v));
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(*out)) return Error(prefix + key, "expected a finite number, found " + Found(v));
    }
    return Status::Ok();
  }

  // A YAML sequence of T ("[val, test]" or a block list); absent leaves *out unchanged.
  template <typename T>
  Status GetList(const YAML::Node& node, const std::string& prefix, const char* key, std::vector<T>* out) const {
    const YAML::Node v = node[key];
    if (!v) return Status::Ok();
    if (!v.IsSequence()) return Error(prefix + key, "expected a list, e.g. [a, b], each " + TypeName<T>());
    std::vector<T> items;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string at = prefix + key + "[" + std::to_string(i) + "]";
      try {
        items.push_back(v[i].as<T>());
      } catch (const YAML::Exception&) {
        return Error(at, "expected " + TypeName<T>() + ", found " + Found(v[i]));
      }
      if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(items.back())) return Error(at, "expected a finite number, found " + Found(v[i]));
      }
    }
    *out = std::move(items);
    return Status::Ok();
  }

 private:
  template <typename T>
  static std::string TypeName() {
    if (std::is_same_v<T, bool>) return "true or false";
    if (std::is_integral_v<T>) return "an integer";
    if (std::is_floating_point_v<T>) return "a number";
    return "a string";
  }
  static std::string Found(const YAML::Node& v) { return v.IsScalar() ? "'" + v.Scalar() + "'" : "a non-scalar"; }
  std::string file_;
};

}  // namespace cadenza
