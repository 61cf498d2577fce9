// The dataset manifest (manifest.json): vocabulary, shards with checksums, per-piece metadata and splits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

class Vocabulary;

enum class Split { kTrain, kVal, kTest };
const char* SplitName(Split split);
StatusOr<Split> ParseSplit(const std::string& name);  // "train" | "val" | "test"

struct PieceMeta {
  std::string id;      // 16 hex digits: hash of the piece's token sequence (its musical content)
  std::string source;  // input path relative to the ingested folder
  Split split = Split::kTrain;
  int shard = 0;
  int64_t index_in_shard = 0;
  int64_t tokens = 0;
  int64_t notes = 0;
  int64_t bars = 0;
  double seconds = 0;
  std::vector<std::string> time_signatures;  // distinct, in order of appearance: "4/4", "6/8"
  double tempo_bpm = 120;                     // initial tempo
  std::string key;                            // first key signature ("G major"), empty if none
  double mean_onset_error_ms = 0;             // quantisation error of this piece
};

struct ShardInfo {
  std::string file;    // relative to the dataset folder: "shard-00000.h5"
  std::string sha256;  // of the whole file
  int64_t pieces = 0;
  int64_t tokens = 0;
  int64_t bytes = 0;
};

struct Manifest {
  static constexpr int kFormatVersion = 1;
  int format_version = kFormatVersion;
  std::string vocab_name;
  int vocab_version = 0;
  std::string vocab_hash;            // hex
  std::vector<std::string> vocabulary;  // token names by id
  double val_fraction = 0.05;
  double test_fraction = 0.05;
  std::string created_utc;
  std::vector<ShardInfo> shards;
  std::vector<PieceMeta> pieces;  // ordered by (shard, index_in_shard)

  std::string ToJson() const;
  static StatusOr<Manifest> FromJson(const std::string& text, const std::string& path_for_errors);
  static StatusOr<Manifest> Load(const std::string& path);
  Status Save(const std::string& path) const;  // atomic
  // Refuses a manifest written with another vocabulary (name, version or hash differ from this build's default
  // grid's, or from `expected`'s): the name says the grid, so a dataset of another grid is refused by name.
  Status CheckVocabulary(const std::string& path_for_errors) const;
  Status CheckVocabulary(const std::string& path_for_errors, const Vocabulary& expected) const;
};

// "2026-11-24T05:17:22Z": when a dataset was made.
std::string UtcTimestamp();

// Split by content hash: stable across runs, machines and input order. u = hash / 2^64.
Split SplitForHash(uint64_t content_hash, double val_fraction, double test_fraction);

}  // namespace cadenza
