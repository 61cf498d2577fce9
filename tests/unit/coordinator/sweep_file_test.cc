// Sweep files: the shipped ones load and expand (matched sizes included); errors name the file and key.
#include "coordinator/sweep_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "coordinator/sweep.h"
#include "core/experiment_config.h"
#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;

ExperimentSpec Base() {
  ExperimentSpec s;
  s.experiment_yaml = testing::ExperimentYaml();
  return s;
}

TEST(SweepFileTest, EveryShippedSweepLoadsAndExpandsAtMatchedSize) {
  const fs::path dir = fs::path(CADENZA_SOURCE_DIR) / "configs/sweeps";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    auto sweep = LoadSweepFile(e.path().string(), Base());
    ASSERT_TRUE(sweep.ok()) << e.path() << ": " << sweep.status().message();
    auto runs = ExpandSweep(*sweep, 100000);
    ASSERT_TRUE(runs.ok()) << e.path() << ": " << runs.status().message();
    EXPECT_FALSE(runs->empty());
  }
  EXPECT_GE(n, 3);
  auto study = LoadSweepFile((dir / "nottingham-study.yaml").string(), Base());
  ASSERT_TRUE(study.ok());
  ASSERT_EQ(study->models.size(), 3u);  // transformer, lstm, gru
  EXPECT_EQ(study->models[1].name, "lstm");
  EXPECT_EQ(study->models[1].set.at("train.lr"), "0.008");
  EXPECT_NE(study->models[1].model_yaml.find("family: lstm"), std::string::npos);
  EXPECT_EQ(study->budget.tokens, 500000);
  EXPECT_NE(study->base.experiment_yaml.find("1024"), std::string::npos);  // probe lengths went into the base
  auto runs = ExpandSweep(*study, 1000);
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  EXPECT_EQ(runs->size(), 3u * 4 * 3);
  // Sizes matched within 10%, as the sweep promises.
  double smallest = 1e18, largest = 0;
  for (const auto& r : *runs) {
    smallest = std::min(smallest, double(r.parameters));
    largest = std::max(largest, double(r.parameters));
  }
  EXPECT_LT(largest - smallest, 0.1 * largest) << smallest << " vs " << largest;
  const auto& lstm_run = (*runs)[2 * 4 * 3 - 1];  // models in file order, each over fractions x seeds
  EXPECT_EQ(lstm_run.axes.at("model"), "lstm");
  EXPECT_EQ(lstm_run.axes.at("train.lr"), "0.008");
  auto c = cadenza::ParseExperimentConfig(lstm_run.experiment_yaml, "run");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_DOUBLE_EQ(c->train.lr, 0.008);
  EXPECT_EQ(runs->back().axes.at("train.lr"), "0.002");  // the GRU's own rate
  EXPECT_EQ(c->probe.lengths.size(), 3u);
}

TEST(SweepFileTest, ErrorsNameTheFileAndKey) {
  testing::TempDir dir;
  auto load = [&](const std::string& text) {
    std::ofstream(dir.File("s.yaml")) << text;
    auto s = LoadSweepFile(dir.File("s.yaml"), Base());
    EXPECT_FALSE(s.ok());
    return s.status().message();
  };
  EXPECT_NE(load("seed: [1]\n").find("s.yaml: seed: unknown key (did you mean seeds?)"), std::string::npos) << load("seed: [1]\n");
  EXPECT_NE(load("seeds: 3\n").find("s.yaml: seeds: expected a list"), std::string::npos);
  EXPECT_NE(load("models: {tf: missing.yaml}\n").find("s.yaml: models.tf: cannot read"), std::string::npos);
  EXPECT_NE(load("budget: {tokenz: 5}\n").find("s.yaml: budget.tokenz: unknown key"), std::string::npos);
  EXPECT_NE(load("dataset_fractions: [a]\n").find("s.yaml: dataset_fractions:"), std::string::npos);
  EXPECT_EQ(LoadSweepFile(dir.File("absent.yaml"), Base()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cadenza::coord
