// `cadenza train`, `cadenza generate` and `cadenza params`: the model commands, kept out of main.cc.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "core/model/generation.h"

namespace cadenza {

struct TrainArgs {
  std::string experiment;  // experiment YAML
  bool resume = false;
  int threads = -1;        // -1: the config's train.threads
  int64_t stop_after = 0;  // checkpoint and stop after this many steps in this process (0: run to the end)
  bool quiet = false;
};
int RunTrain(const TrainArgs& args);  // prints the run summary; returns the exit code

struct GenerateArgs {
  std::string checkpoint, out, primer;
  int64_t primer_bars = 4;
  bool wav = false;
  std::string soundfont;
  int threads = 0;
  GenerateOptions o;
};
int RunGenerate(GenerateArgs args);  // writes sample-NNN.{mid,json,wav}; returns the exit code

// Adds the subcommands to `app`; each runs from its own callback and stores its exit code in *exit_code.
void AddModelCommands(CLI::App& app, int* exit_code);

}  // namespace cadenza
