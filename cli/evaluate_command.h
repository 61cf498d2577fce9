// `cadenza evaluate`: its options and its run, shared by `cadenza` and (with --checkpoint) `cadenza-model`.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "core/eval/evaluate.h"

namespace cadenza {

// Exit codes: 0 every input evaluated; 3 report written but some inputs were skipped (listed in the report);
// 1 fatal (nothing evaluable, bad dataset or split, bad checkpoint, report not writable); 2 usage.
constexpr int kEvaluateExitPartial = 3;

struct EvaluateArgs {
  EvaluateRequest request;  // its reference is opened by RunEvaluate from `reference` and `split`
  std::string reference;    // dataset folder; empty: no reference
  std::string split = "test";
  std::string out;
  std::string segment = "bar";
  std::string checkpoint;  // non-empty: the model's hidden states are the SSM's segment embeddings
  bool quiet = false;
  double max_ssm_mb = 512;  // --max-ssm-mb: refuse a --max-segments whose structure matrices exceed this
};

// Bytes per cell of a piece's structure scoring: the SSM (float) and its diagonal path sums (double).
constexpr double kSsmBytesPerCell = 12;

// Registers the subcommand; `run` is called with the parsed arguments and its result stored in *exit_code.
CLI::App* AddEvaluateCommand(CLI::App& app, const std::function<int(const EvaluateArgs&)>& run, int* exit_code);

// Runs the evaluation (with args.request.segment_embeddings if set), writes the report, prints a summary line.
int RunEvaluate(EvaluateArgs args);

}  // namespace cadenza
