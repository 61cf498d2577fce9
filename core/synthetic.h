// Structured synthetic tunes: several meters, chord progressions, repeated and varied sections.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/score.h"
#include "core/status.h"

namespace cadenza {

struct SyntheticOptions {
  uint64_t seed = 1;
  int count = 200;  // number of tunes
};

struct SyntheticTune {
  std::string name;  // "synth-0001-ABAB-6_8"
  std::string form;  // section letters, e.g. "AABA"
  Score score;       // melody track + chord track, quantised to the grid, deterministic by seed
};

// Tune i depends only on (seed, i): the same seed always gives the same corpus.
SyntheticTune MakeSyntheticTune(uint64_t seed, int index);
std::vector<SyntheticTune> MakeSyntheticCorpus(const SyntheticOptions& options);
// Writes each tune as <dir>/<name>.mid; creates dir.
Status WriteSyntheticCorpus(const SyntheticOptions& options, const std::string& dir);

}  // namespace cadenza
