// Experiment validation (field names in errors) and sweep expansion.
#include "coordinator/sweep.h"

#include <gtest/gtest.h>

#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

ExperimentSpec Spec(const std::string& yaml = testing::ExperimentYaml()) {
  ExperimentSpec s;
  s.experiment_yaml = yaml;
  return s;
}

std::string ErrorOf(const ExperimentSpec& s) {
  auto e = ValidateExperiment(s);
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  return e.status().message();
}

TEST(SweepTest, ValidatesAndAppliesOverrides) {
  ExperimentSpec s = Spec();
  s.model_family = "gru";
  s.seed = 11;
  s.dataset = "/data/other";
  auto e = ValidateExperiment(s);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->model_family, "gru");
  EXPECT_EQ(e->seed, 11u);
  EXPECT_EQ(e->dataset, "/data/other");
  EXPECT_EQ(e->samples, 8);
  EXPECT_EQ(e->reference_split, "test");
  EXPECT_NE(e->experiment_yaml.find("family: gru"), std::string::npos) << e->experiment_yaml;
  EXPECT_NE(e->experiment_yaml.find("seed: 11"), std::string::npos);
  EXPECT_NE(e->experiment_yaml.find("/data/other"), std::string::npos);
}

TEST(SweepTest, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf(Spec(testing::ExperimentYaml("mamba"))).rfind("experiment.model.family: expected transformer, lstm or gru", 0), 0u)
      << ErrorOf(Spec(testing::ExperimentYaml("mamba")));
  ExperimentSpec s = Spec();
  s.model_family = "mamba";
  EXPECT_EQ(ErrorOf(s).rfind("experiment.model_family: expected transformer, lstm or gru", 0), 0u);
  EXPECT_EQ(ErrorOf(Spec("")).rfind("experiment.experiment_yaml: required", 0), 0u);
  EXPECT_EQ(ErrorOf(Spec("name: x\ndataset: d\nout: o\nmodel: ../models/x.yaml\n")).rfind("experiment.model: expected a mapping", 0), 0u);
  EXPECT_EQ(ErrorOf(Spec("{unclosed")).rfind("experiment.experiment_yaml: line", 0), 0u) << ErrorOf(Spec("{unclosed"));
  EXPECT_EQ(ErrorOf(Spec(testing::ExperimentYaml() + "colour: blue\n")).rfind("experiment.colour: unknown key", 0), 0u)
      << ErrorOf(Spec(testing::ExperimentYaml() + "colour: blue\n"));
  s = Spec();
  s.samples = -1;
  EXPECT_EQ(ErrorOf(s).rfind("experiment.samples: expected 1..100000", 0), 0u);
  s = Spec();
  s.reference_split = "dev";
  EXPECT_EQ(ErrorOf(s).rfind("experiment.reference_split:", 0), 0u);
  s = Spec();
  s.name = "../etc";
  EXPECT_EQ(ErrorOf(s).rfind("experiment.name:", 0), 0u);
}

TEST(SweepTest, ExpandsTheCartesianProduct) {
  SweepSpec sw;
  sw.base = Spec();
  sw.datasets = {"/data/small", "/data/large/"};
  sw.model_families = {"transformer", "lstm"};
  sw.seeds = {1, 2, 3};
  sw.name = "scale";
  auto specs = ExpandSweep(sw, 100);
  ASSERT_TRUE(specs.ok()) << specs.status().message();
  ASSERT_EQ(specs->size(), 12u);
  EXPECT_EQ((*specs)[0].name, "scale-small-transformer-s1");
  EXPECT_EQ((*specs)[0].output_dir, "/runs/unit/scale-small-transformer-s1");
  EXPECT_EQ((*specs)[11].name, "scale-large-lstm-s3");
  EXPECT_EQ((*specs)[11].dataset, "/data/large/");
  for (const ExperimentSpec& s : *specs) EXPECT_TRUE(ValidateExperiment(s).ok());
}

TEST(SweepTest, EmptyListsKeepTheBaseValue) {
  SweepSpec sw;
  sw.base = Spec();
  sw.seeds = {4, 5};
  auto specs = ExpandSweep(sw, 100);
  ASSERT_TRUE(specs.ok());
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[1].name, "unit-ds-transformer-s5");
}

TEST(SweepTest, RejectsBadListsAndHugeSweeps) {
  SweepSpec sw;
  sw.base = Spec();
  sw.model_families = {"lstm", "cnn"};
  EXPECT_EQ(ExpandSweep(sw, 100).status().message().rfind("sweep.model_families[1]: expected transformer, lstm or gru", 0), 0u);
  sw.model_families.clear();
  sw.seeds = {1, 0};
  EXPECT_EQ(ExpandSweep(sw, 100).status().message().rfind("sweep.seeds[1]", 0), 0u);
  sw.seeds = {1, 2, 3};
  EXPECT_EQ(ExpandSweep(sw, 2).status().message().rfind("sweep: 3 experiments exceed the limit of 2", 0), 0u);
  sw.base.experiment_yaml = testing::ExperimentYaml("mamba");
  EXPECT_EQ(ExpandSweep(sw, 100).status().message().rfind("sweep.base.model.family", 0), 0u);
}

}  // namespace
}  // namespace cadenza::coord
