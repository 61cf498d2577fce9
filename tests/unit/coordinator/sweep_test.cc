// Experiment validation (field names in errors) and sweep expansion.
#include "coordinator/sweep.h"

#include <gtest/gtest.h>

#include <set>

#include "core/experiment_config.h"

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
  sw.allow_unmatched = true;  // the families differ in size (MatchedSizesOrRefusal)
  auto specs = ExpandSweep(sw, 100);
  ASSERT_TRUE(specs.ok()) << specs.status().message();
  ASSERT_EQ(specs->size(), 12u);
  EXPECT_EQ((*specs)[0].name, "scale-small-transformer-s1");
  EXPECT_EQ((*specs)[0].output_dir, "/runs/unit/scale-small-transformer-s1");
  EXPECT_EQ((*specs)[11].name, "scale-large-lstm-s3");
  EXPECT_EQ((*specs)[11].dataset, "/data/large/");
  EXPECT_EQ((*specs)[11].model_family, "lstm");
  EXPECT_EQ((*specs)[11].axes.at("seed"), "3");
  EXPECT_EQ((*specs)[11].axes.at("dataset"), "large");
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

// Two named models of the base's shape, so their sizes match exactly.
SweepSpec StudySweep() {
  SweepSpec sw;
  sw.base = Spec();
  sw.name = "study";
  const std::string model = "{family: transformer, d_model: 64, layers: 2, heads: 4, ff_dim: 128, max_len: 512}";
  sw.models = {{"tf", model, {}}, {"tf2", model, {}}};
  sw.dataset_fractions = {0.1, 0.5};
  sw.context_lengths = {32, 64};
  sw.grid = {{"train.lr", {"1e-3", "5e-4"}}};
  sw.seeds = {1, 2};
  sw.budget.tokens = 6400;
  return sw;
}

TEST(SweepTest, StudyAxesNamesAndBudget) {
  auto runs = ExpandSweep(StudySweep(), 1000);
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  ASSERT_EQ(runs->size(), 2u * 2 * 2 * 2 * 2);
  const Experiment& first = (*runs)[0];
  EXPECT_EQ(first.name, "study-ds-tf-f0.1-T32-1e-3-s1");
  EXPECT_EQ(first.output_dir, "/runs/unit/study-ds-tf-f0.1-T32-1e-3-s1");
  EXPECT_EQ(first.axes.at("model"), "tf");
  EXPECT_EQ(first.axes.at("dataset_fraction"), "0.1");
  EXPECT_EQ(first.axes.at("context_length"), "32");
  EXPECT_EQ(first.axes.at("train.lr"), "1e-3");
  EXPECT_EQ(first.axes.at("seed"), "1");
  EXPECT_GT(first.parameters, 0);
  EXPECT_EQ((*runs)[1].name, "study-ds-tf-f0.1-T32-1e-3-s2");  // seeds vary fastest
  EXPECT_EQ((*runs)[2].axes.at("train.lr"), "5e-4");        // then the grid
  auto config_of = [](const Experiment& e) {
    auto c = ParseExperimentConfig(e.experiment_yaml, "run");
    EXPECT_TRUE(c.ok()) << c.status().message();
    return *c;
  };
  // Budget in tokens: steps = ceil(6400 / (batch 4 x seq_len)): the same tokens at every context length.
  const ExperimentConfig c32 = config_of(first), c64 = config_of((*runs)[4]);
  EXPECT_EQ(c32.train.seq_len, 32);
  EXPECT_EQ(c32.train.steps, 50);
  EXPECT_EQ(c64.train.seq_len, 64);
  EXPECT_EQ(c64.train.steps, 25);
  EXPECT_DOUBLE_EQ(c32.train.data_fraction, 0.1);
  EXPECT_DOUBLE_EQ(c32.train.lr, 1e-3);
  EXPECT_DOUBLE_EQ(config_of((*runs)[8]).train.data_fraction, 0.5);
  EXPECT_EQ(c32.train.seed, 1u);
  // Every run has its own folder, and its YAML is exactly what validating it alone gives.
  std::set<std::string> outs;
  for (const Experiment& e : *runs) {
    outs.insert(e.output_dir);
    const ExperimentConfig c = config_of(e);
    EXPECT_EQ(c.name, e.name);
    EXPECT_EQ(c.out, e.output_dir);
    EXPECT_EQ(c.train.seed, e.seed);
    ExperimentSpec alone;
    alone.experiment_yaml = e.experiment_yaml;
    EXPECT_EQ(ValidateExperiment(alone)->experiment_yaml, e.experiment_yaml);
  }
  EXPECT_EQ(outs.size(), runs->size());
}

TEST(SweepTest, MatchedSizesOrRefusal) {
  SweepSpec sw = StudySweep();
  sw.models[1] = {"lstm", "{family: lstm, d_model: 64, layers: 2, hidden: 256, attention: general}", {}};
  auto refused = ExpandSweep(sw, 1000);
  ASSERT_FALSE(refused.ok());
  const std::string m = refused.status().message();
  EXPECT_EQ(m.rfind("sweep.models: parameter counts differ by", 0), 0u) << m;
  EXPECT_NE(m.find("tf " + std::to_string(ExpandSweep(StudySweep(), 1000)->front().parameters)), std::string::npos) << m;
  EXPECT_NE(m.find("allow_unmatched"), std::string::npos) << m;
  sw.allow_unmatched = true;
  EXPECT_TRUE(ExpandSweep(sw, 1000).ok());
  // The old form swaps only the family and keeps the base's other model keys: refused the same way, with a hint.
  SweepSpec old;
  old.base = Spec();
  old.model_families = {"transformer", "lstm"};
  auto o = ExpandSweep(old, 100);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("use `models:`"), std::string::npos) << o.status().message();
  // A loose tolerance accepts what the default refuses.
  sw.allow_unmatched = false;
  sw.match_tolerance = 0.999;
  EXPECT_TRUE(ExpandSweep(sw, 1000).ok());
}

TEST(SweepTest, StudyErrorsNameTheKey) {
  SweepSpec sw = StudySweep();
  sw.dataset_fractions = {0.5, 1.5};
  EXPECT_EQ(ExpandSweep(sw, 1000).status().message().rfind("sweep.dataset_fractions[1]: expected a fraction in (0, 1]", 0), 0u);
  sw = StudySweep();
  sw.grid = {{"train.lrr", {"1"}}};
  EXPECT_EQ(ExpandSweep(sw, 1000).status().message().rfind("sweep.grid[0] (train.lrr = 1):", 0), 0u) << ExpandSweep(sw, 1000).status().message();
  sw.grid = {{"train.lr", {"-1"}}};
  EXPECT_EQ(ExpandSweep(sw, 1000).status().message().rfind("sweep.grid[0] (train.lr = -1):", 0), 0u) << ExpandSweep(sw, 1000).status().message();
  sw.grid = {{"train.seq_len", {"64"}}};
  EXPECT_NE(ExpandSweep(sw, 1000).status().message().find("has its own sweep key"), std::string::npos);
  sw = StudySweep();
  sw.budget.steps = 10;
  EXPECT_EQ(ExpandSweep(sw, 1000).status().message().rfind("sweep.budget: give one of tokens, epochs or steps", 0), 0u);
  sw = StudySweep();
  sw.models[1].name = "tf";
  EXPECT_EQ(ExpandSweep(sw, 1000).status().message().rfind("sweep.models[1].name: 'tf' is given twice", 0), 0u);
  sw = StudySweep();
  EXPECT_EQ(ExpandSweep(sw, 31).status().message().rfind("sweep: 32 experiments exceed the limit of 31", 0), 0u);
}

TEST(SweepTest, RandomDrawsGridPointsReproducibly) {
  SweepSpec sw = StudySweep();
  sw.dataset_fractions.clear();
  sw.context_lengths.clear();
  sw.seeds = {1};
  sw.models.resize(1);
  sw.grid = {{"train.lr", {"1e-3", "5e-4", "2e-4", "1e-4"}}, {"train.weight_decay", {"0", "0.01", "0.1"}}};
  sw.random = 5;
  sw.random_seed = 42;
  auto a = ExpandSweep(sw, 1000), b = ExpandSweep(sw, 1000);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_EQ(a->size(), 5u);
  std::set<std::string> names;
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].name, (*b)[i].name);
    names.insert((*a)[i].name);
  }
  EXPECT_EQ(names.size(), 5u);  // without repetition
  sw.random_seed = 43;
  auto c = ExpandSweep(sw, 1000);
  bool differs = false;
  for (size_t i = 0; i < c->size(); ++i) differs = differs || (*c)[i].name != (*a)[i].name;
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace cadenza::coord
