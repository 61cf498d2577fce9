// sweep_bench: expanding and validating a 10,000-experiment sweep (issue target: under 1 s), against the target.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "coordinator/sweep.h"

int main(int argc, char** argv) {
  CLI::App app{"Times ExpandSweep (expansion, validation, parameter counts, effective YAML) of a study-sized sweep"};
  int seeds = 10, repeats = 3;
  app.add_option("--seeds", seeds, "Seeds per cell (10: 2 models x 5 fractions x 5 contexts x 20 grid points x 10 = 10,000)")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed expansions (the median is reported)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  using namespace cadenza::coord;
  SweepSpec sw;
  sw.base.experiment_yaml =
      "name: bench\ndataset: /data/ds\nout: /runs/bench\n"
      "model: {family: transformer, d_model: 256, layers: 4, heads: 8, ff_dim: 1024, max_len: 2048}\n"
      "train: {seq_len: 256, batch_size: 16, steps: 100}\nprobe: {lengths: [64, 256, 1024]}\n";
  sw.name = "bench";
  sw.models = {{"transformer", "{family: transformer, d_model: 256, layers: 4, heads: 8, ff_dim: 1024, max_len: 2048}", {}},
               {"lstm", "{family: lstm, d_model: 256, layers: 2, hidden: 448, attention: general}", {{"train.lr", "0.002"}}}};
  sw.dataset_fractions = {0.1, 0.25, 0.5, 0.75, 1.0};
  sw.context_lengths = {64, 128, 256, 512, 1024};
  sw.grid = {{"train.weight_decay", {"0", "0.01", "0.05", "0.1"}}, {"train.warmup_steps", {"10", "20", "50", "100", "200"}}};
  for (int s = 1; s <= seeds; ++s) sw.seeds.push_back(static_cast<uint64_t>(s));
  sw.budget.tokens = 1000000;
  std::vector<double> ms;
  size_t n = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto runs = ExpandSweep(sw, 1000000);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!runs.ok()) {
      std::fprintf(stderr, "sweep_bench: %s\n", runs.status().message().c_str());
      return 1;
    }
    n = runs->size();
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("%-40s %12s %12s %8s\n", "", "cadenza", "target", "ratio");
  std::printf("%-40s %9.0f ms %9.0f ms %7.2fx\n", ("expand + validate " + std::to_string(n) + " experiments").c_str(), median, 1000.0,
              1000.0 / median);
  std::printf("%-40s %9.1f us\n", "per experiment", 1000.0 * median / double(n));
  return median < 1000.0 ? 0 : 2;
}
