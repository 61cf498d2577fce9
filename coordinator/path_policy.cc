// Confinement of a spec's paths to the configured roots (see path_policy.h).
#include "coordinator/path_policy.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <system_error>

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;

// Normalised; symlinks resolved as far as the path exists (weakly_canonical), so a link out of a root is seen.
std::string Resolved(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::path(path).lexically_normal();
  const fs::path c = fs::weakly_canonical(p, ec);
  std::string s = (ec ? p : c).string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool Inside(const std::string& p, const std::string& root, bool allow_equal) {
  if (p == root) return allow_equal;
  if (root == "/") return p.size() > 1 && p[0] == '/';
  return p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/';
}

}  // namespace

bool PathWithin(const std::string& path, const std::string& root, bool allow_equal) {
  if (path.empty() || path[0] != '/') return false;  // relative paths mean whatever the reader's directory is
  const std::string r = Resolved(root);
  return Inside(fs::path(path).lexically_normal().string(), fs::path(root).lexically_normal().string(), allow_equal) &&
         Inside(Resolved(path), r, allow_equal);
}

Status CheckExperimentPaths(const Experiment& e, const PathPolicy& policy, const std::string& field, const std::string& whose) {
  if (policy.empty()) return Status::Ok();
  std::vector<std::pair<std::string, std::string>> datasets = {{field + ".dataset", e.dataset}};
  try {
    const YAML::Node on = YAML::Load(e.experiment_yaml)["score"]["on"];
    if (on && on.IsSequence()) {
      for (size_t i = 0; i < on.size(); ++i) datasets.push_back({field + ".score.on[" + std::to_string(i) + "]", on[i].as<std::string>()});
    }
  } catch (const YAML::Exception&) {
    // ValidateExperiment parsed it already; nothing more to confine
  }
  if (!policy.data_roots.empty()) {
    for (const auto& [name, path] : datasets) {
      bool ok = false;
      for (const std::string& root : policy.data_roots) ok = ok || PathWithin(path, root, /*allow_equal=*/true);
      if (!ok) {
        std::string roots;
        for (const std::string& root : policy.data_roots) roots += (roots.empty() ? "" : ", ") + root;
        return PermissionDenied(name + ": " + path + " is outside " + whose + " data roots (" + roots + ")");
      }
    }
  }
  if (!policy.output_root.empty() && !PathWithin(e.output_dir, policy.output_root, /*allow_equal=*/false)) {
    return PermissionDenied(field + ".out: " + e.output_dir + " is outside " + whose + " output root " + policy.output_root);
  }
  return Status::Ok();
}

}  // namespace cadenza::coord
