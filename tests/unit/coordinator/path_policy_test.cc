// Path confinement of specs (issue "trust boundaries"): the cases an adversarial user tried, and a symlink out.
#include "coordinator/path_policy.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "coordinator/config.h"
#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;

TEST(PathPolicyTest, SpecsOutsideTheRootsAreRefusedNamingTheField) {
  testing::TempDir dir;
  const std::string data = dir.File("data"), runs = dir.File("runs");
  fs::create_directories(data + "/nottingham");
  fs::create_directories(runs);
  fs::create_symlink("/etc", data + "/escape");
  PathPolicy policy{{data}, runs};
  Experiment e = testing::MakeExperiment();
  e.dataset = data + "/nottingham";
  e.output_dir = runs + "/study/run-1";
  EXPECT_TRUE(CheckExperimentPaths(e, policy, "experiment").ok());
  EXPECT_TRUE(CheckExperimentPaths(e, PathPolicy{}, "experiment").ok()) << "no roots configured: anywhere";
  for (const std::string& out : {std::string("../../.."), std::string("/"), std::string("/tmp/x/../y"), runs, runs + "/../elsewhere", runs + "x/a"}) {
    Experiment bad = e;
    bad.output_dir = out;
    Status s = CheckExperimentPaths(bad, policy, "experiment");
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << out;
    EXPECT_EQ(s.message().rfind("experiment.out: " + out + " is outside the coordinator's output root", 0), 0u) << s.message();
  }
  for (const std::string& ds : {std::string("../../etc"), std::string("/etc"), data + "/../etc", data + "/escape", data + "/escape/ssl"}) {
    Experiment bad = e;
    bad.dataset = ds;
    Status s = CheckExperimentPaths(bad, policy, "experiment");
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << ds;
    EXPECT_EQ(s.message().rfind("experiment.dataset: " + ds + " is outside the coordinator's data roots", 0), 0u) << s.message();
  }
  Experiment cross = e;
  cross.experiment_yaml = "name: x\nscore: {on: [" + data + "/nottingham, /srv/other]}\n";
  Status s = CheckExperimentPaths(cross, policy, "sweep.experiments[3]");
  EXPECT_EQ(s.message().rfind("sweep.experiments[3].score.on[1]: /srv/other", 0), 0u) << s.message();
}

TEST(PathPolicyTest, TheConfigReadsTheRootsAndRefusesRelativeOnes) {
  auto c = ParseCoordinatorConfig("paths: {data_roots: [/srv/data, /scratch/corpora], output_root: /srv/runs}\n", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->paths.data_roots.size(), 2u);
  EXPECT_EQ(c->paths.output_root, "/srv/runs");
  auto rel = ParseCoordinatorConfig("paths: {output_root: runs}\n", "c.yaml");
  EXPECT_EQ(rel.status().message(), "c.yaml: paths.output_root: expected an absolute folder, found 'runs'");
  auto again = ParseCoordinatorConfig(c->ToYaml(), "round-trip.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << c->ToYaml();
  EXPECT_EQ(again->paths.data_roots, c->paths.data_roots);
}

}  // namespace
}  // namespace cadenza::coord
