// Where a job may read and write: the coordinator config's `paths.data_roots` and `paths.output_root`. Specs that
// leave them (`..`, an absolute path elsewhere, a symlink out) are refused at submit, naming the field.
#pragma once

#include <string>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

struct PathPolicy {
  std::vector<std::string> data_roots;  // datasets (the experiment's and score.on's) lie in one of these; empty: anywhere
  std::string output_root;              // run folders lie inside it; empty: anywhere
  bool empty() const { return data_roots.empty() && output_root.empty(); }
};

// OK, or PERMISSION_DENIED naming `field` and the path. Paths are compared after normalising `..`, and, for paths
// that exist, after resolving symlinks (a link inside a root that points out of it is refused). `whose` names the
// policy's owner in messages ("the coordinator's"; a worker checking again on its own filesystem says so).
Status CheckExperimentPaths(const Experiment& experiment, const PathPolicy& policy, const std::string& field,
                            const std::string& whose = "the coordinator's");

// `path` lies inside `root` (or is it, with `allow_equal`), by the rules above.
bool PathWithin(const std::string& path, const std::string& root, bool allow_equal);

}  // namespace cadenza::coord
