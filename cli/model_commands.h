// The model commands themselves, linked only into `cadenza-model` (they load LibTorch).
#pragma once

#include <string>
#include <vector>

#include "cli/evaluate_command.h"
#include "cli/model_options.h"

namespace cadenza {

int RunTrain(const TrainArgs& args);                   // prints the run summary
int RunGenerate(GenerateArgs args);                    // writes sample-NNN.{mid,json,wav}
int RunParams(const std::vector<std::string>& files);  // parameter counts of model configs
int RunProbe(const ProbeArgs& args);                   // latency and memory against context length, as CSV
int RunScore(const ScoreArgs& args);                   // NLL per token and per bar over every window of a split
int RunEvaluateWithModel(const EvaluateArgs& args);    // evaluate, the SSM on --checkpoint's hidden states

}  // namespace cadenza
