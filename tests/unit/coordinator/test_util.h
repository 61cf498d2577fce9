// Helpers shared by the coordinator unit tests: a valid experiment YAML and a scheduler over a fresh database.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "coordinator/sweep.h"
#include "coordinator/types.h"

namespace cadenza::coord::testing {

inline std::string ExperimentYaml(const std::string& family = "transformer") {
  return "name: unit\n"
         "dataset: /data/ds\n"
         "out: /runs/unit\n"
         "model: {family: " + family + ", d_model: 64, layers: 2, " +
         (family == "transformer" ? "heads: 4, ff_dim: 128, max_len: 512" : "hidden: 64") + "}\n"
         "train: {seq_len: 64, batch_size: 4, steps: 10, seed: 7}\n";
}

inline Experiment MakeExperiment(int samples = 4, int samples_per_task = 0) {
  ExperimentSpec spec;
  spec.experiment_yaml = ExperimentYaml();
  spec.samples = samples;
  spec.samples_per_task = samples_per_task;
  auto e = ValidateExperiment(spec);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return *e;
}

// A fresh folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("cadenza-coord-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

}  // namespace cadenza::coord::testing
