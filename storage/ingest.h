// `cadenza ingest`: MIDI folder -> sharded HDF5 dataset + manifest + ingest report, atomically and resumably.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

struct IngestOptions {
  std::string input_dir;  // searched recursively for *.mid / *.midi (any case)
  std::string out_dir;    // must not exist yet, unless `overwrite`
  int shards = 4;
  double val_fraction = 0.05;
  double test_fraction = 0.05;
  int jobs = 1;  // parser threads
  bool overwrite = false;
  bool progress = true;  // progress line on stderr
  // Testing hook: fail after writing this many shards, leaving <out>.partial as a crash would (-1: off).
  int stop_after_shards = -1;
};

struct SkippedFile {
  std::string path;
  std::string reason;
};

struct DuplicateFile {
  std::string path;          // relative to the input folder
  std::string duplicate_of;  // the earlier file (sorted path order) with the same tokens, which was kept
};

struct IngestReport {
  int64_t files_found = 0;
  int64_t pieces = 0;
  int64_t duplicates = 0;  // files whose content hash equals an earlier file's: ingested once
  std::vector<DuplicateFile> duplicate_files;
  std::vector<SkippedFile> skipped;  // path relative to the input folder, reason = the error message
  int64_t shards = 0;
  int64_t notes = 0;
  int64_t tokens = 0;
  int64_t bars = 0;
  double seconds_of_music = 0;
  int64_t split_counts[3] = {0, 0, 0};  // train, val, test
  double mean_onset_error_ms = 0;
  int64_t off_grid_onsets = 0;
  int64_t clipped_durations = 0;
  int64_t shards_reused = 0;  // shards finished by an interrupted earlier run and kept
  double wall_seconds = 0;
  std::string ToJson() const;
  std::string Summary() const;  // the human-readable block printed at the end
};

// Writes <out>.partial/ and renames it to <out> at the end; a rerun after an interruption keeps finished shards.
Status Ingest(const IngestOptions& options, IngestReport* report);

}  // namespace cadenza
