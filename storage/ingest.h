// `cadenza ingest`: MIDI folder -> sharded HDF5 dataset + manifest + ingest report, atomically and resumably.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tokenizer.h"

namespace cadenza {

struct IngestOptions {
  std::string input_dir;  // searched recursively for *.mid / *.midi (any case)
  std::string out_dir;    // must not exist yet, unless `overwrite`
  int shards = 4;
  double val_fraction = 0.05;
  double test_fraction = 0.05;
  int jobs = 1;  // parser threads
  int grid = 12;  // steps per quarter note: 12, 24 or 48 (the vocabulary, and so the dataset's name, says which)
  // The sustain pedal: applied to note durations (default), kept as pedal tokens (the grid's "-pedal" vocabulary,
  // which the dataset's name then says), or ignored (TokenizerOptions::pedal).
  SustainPedal pedal = SustainPedal::kApply;
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

// One ingested file's losses (only files with any are listed in the report).
struct PieceLosses {
  std::string path;
  int64_t off_grid_onsets = 0, clipped_durations = 0, merged_duplicates = 0, cut_overlaps = 0, clamped_tempos = 0,
          skipped_meters = 0, moved_meters = 0, sustain_presses = 0, sustained_notes = 0, pedal_tokens = 0,
          lost_pedal_presses = 0, notes_in = 0, tempo_changes = 0;
  double seconds_in = 0, seconds_out = 0;
  std::vector<std::string> skipped_meter_reasons;
  bool Any() const {
    return off_grid_onsets || clipped_durations || merged_duplicates || cut_overlaps || clamped_tempos ||
           skipped_meters || moved_meters || sustained_notes || pedal_tokens || lost_pedal_presses;
  }
};

// What tokenizing did to the music (QuantizationStats summed over the ingested pieces): every loss counted.
struct IngestLosses {
  int64_t notes_in = 0;           // notes read from the files
  int64_t off_grid_onsets = 0;    // onsets moved to the grid by more than 1 tick
  int64_t clipped_durations = 0;  // notes longer than 16 quarters, clipped
  int64_t merged_duplicates = 0;  // same onset, instrument and pitch after quantisation: merged into one
  int64_t cut_overlaps = 0;       // notes cut at the next onset of their instrument and pitch
  int64_t tempo_changes = 0;      // tempo events read
  int64_t clamped_tempos = 0;     // tempo spans outside the tempo bins' range
  int64_t skipped_meters = 0;     // time signatures that cannot be represented (reasons in pieces_with_losses)
  int64_t moved_meters = 0;       // meter changes moved to the next bar line
  int64_t sustain_presses = 0;    // sustain-pedal presses applied to note durations
  int64_t sustained_notes = 0;    // notes lengthened by the pedal
  int64_t pedal_tokens = 0;       // Pedal_Down / Pedal_Up tokens written (--pedal tokens)
  int64_t lost_pedal_presses = 0;  // presses without a press of their own in the tokens (QuantizationStats)
  double max_time_drift = 0;      // largest |playing time from the tokens / the file's - 1| over the pieces
  std::string max_time_drift_file;
  void Add(const PieceLosses& piece);
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
  int64_t off_grid_onsets = 0;    // = losses.off_grid_onsets (kept for readers of the older report)
  int64_t clipped_durations = 0;  // = losses.clipped_durations
  int grid = 12;
  SustainPedal pedal = SustainPedal::kApply;
  IngestLosses losses;
  std::vector<PieceLosses> pieces_with_losses;  // ingested files (duplicates left out) with any loss, in path order
  int64_t shards_reused = 0;  // shards finished by an interrupted earlier run and kept
  double wall_seconds = 0;
  std::string ToJson() const;
  std::string Summary() const;  // the human-readable block printed at the end
};

// Writes <out>.partial/ and renames it to <out> at the end; a rerun after an interruption keeps finished shards.
Status Ingest(const IngestOptions& options, IngestReport* report);

}  // namespace cadenza
