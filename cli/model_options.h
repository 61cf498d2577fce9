// The model commands' options (train, generate, params, probe, score), without torch: `cadenza` parses and checks them,
// then hands the command line to `cadenza-model`, the only binary that loads LibTorch.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/model/generation.h"

namespace cadenza {

struct TrainArgs {
  std::string experiment;  // experiment YAML
  std::vector<std::string> overrides;  // key=value (train.steps=300), applied to the file's values
  bool resume = false;
  int threads = -1;        // -1: the config's train.threads
  int64_t stop_after = 0;  // checkpoint and stop after this many steps in this process (0: run to the end)
  bool quiet = false;
};

struct GenerateArgs {
  std::string checkpoint, out, primer;
  int64_t primer_bars = 4;
  bool wav = false;
  std::string soundfont;
  int threads = 0;
  GenerateOptions o;
};

struct ProbeArgs {
  std::vector<std::string> checkpoints;  // trained checkpoints (.pt)
  std::vector<std::string> models;       // model configs (.yaml): initial weights, same speed and memory
  std::vector<int64_t> lengths{64, 128, 256, 512, 1024};
  std::string out;
  int64_t batch = 1;
  int warmup = 2;
  int repeats = 5;
  int threads = 0;
  uint64_t seed = 0;
  bool quiet = false;
};

struct ScoreArgs {
  std::string checkpoint;                  // a trained checkpoint (.pt)
  std::string dataset;                     // a dataset folder written by `cadenza ingest`
  std::vector<std::string> splits{"test"};
  std::string out;                         // JSON report (optional)
  std::string windows = "tiled";           // tiled | every_bar (ScoreConfig::windows)
  int threads = 0;
};

// What each command does once its options are parsed; returns the exit code.
struct ModelCommandHandlers {
  std::function<int(const TrainArgs&)> train;
  std::function<int(const GenerateArgs&)> generate;
  std::function<int(const std::vector<std::string>&)> params;
  std::function<int(const ProbeArgs&)> probe;
  std::function<int(const ScoreArgs&)> score;
};

void AddModelCommands(CLI::App& app, const ModelCommandHandlers& run, int* exit_code);

}  // namespace cadenza
