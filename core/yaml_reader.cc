// YamlReader's key checks and the nearest-key search (core/yaml_reader.h).
#include "core/yaml_reader.h"

#include <algorithm>

namespace cadenza {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string NearestKey(const std::string& key, const std::set<std::string>& candidates) {
  // A typo is a few edits, fewer for a short key ("beams" is not a typo of "bars"); a key cut short counts too.
  const size_t limit = std::min<size_t>(3, std::max<size_t>(1, key.size() / 3));
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const size_t d = key.size() >= 3 && c.compare(0, key.size(), key) == 0 ? 1 : EditDistance(key, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

Status YamlReader::Error(const std::string& key, const std::string& what) const {
  return InvalidArgument(file_ + ": " + key + ": " + what);
}

Status YamlReader::OnlyKeys(const YAML::Node& node, const std::string& path, const std::set<std::string>& allowed) const {
  if (!node.IsMap()) return Error(path.empty() ? "(top level)" : path, "expected a mapping");
  const std::string prefix = path.empty() ? "" : path + ".";
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (!seen.insert(key).second) return Error(prefix + key, "appears twice in the same mapping (remove one)");
    if (allowed.count(key)) continue;
    const std::string near = NearestKey(key, allowed);
    std::string list;
    for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return Error(prefix + key, "unknown key (" + (near.empty() ? "" : "did you mean " + prefix + near + "?; ") + "expected one of: " + list + ")");
  }
  return Status::Ok();
}

}  // namespace cadenza
