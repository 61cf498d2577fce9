// The `cadenza` command's building blocks (cli/main.cc), shared with the main job (cli/demo.cc).
#pragma once

#include <string>
#include <vector>

#include "cli/fail.h"
#include "core/status.h"
#include "storage/ingest.h"

namespace cadenza {

int RunModelBinary(const std::vector<std::string>& args);  // runs cadenza-model with argv[1..] = args
int RunIngest(IngestOptions options, bool quiet);
int RunInspect(const std::string& dir, bool verify, int64_t piece);
int RunSynth(const std::string& out, int count, uint64_t seed);

struct DemoOptions {
  std::string data;         // MIDI folder; empty: synthetic tunes
  std::string out = "out/demo";
  int jobs = 2;
  int count = 200;          // synthetic tunes
  int steps = 1200;         // training steps per family (0: stop after the dataset); ~50 s each on 2 cores
  int samples = 8;          // generated pieces per family
  bool cluster = true;      // train and generate through a local coordinator and a 2-rank worker group (cli/local_cluster.h)
  bool sweep = false;       // the study's default sweep (2 families x 3 fractions x 2 seeds) and its report instead of one pair
};

// The main job on one machine: corpus -> ingest -> train both families at matched size -> generate (MIDI, WAV)
// -> evaluate against the test split -> probe latency and memory -> side-by-side table.
int RunDemo(const DemoOptions& options);

}  // namespace cadenza
