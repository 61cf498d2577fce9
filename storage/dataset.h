// Reading a dataset: random access to pieces, bar-aligned windows, epochs by seed, rank/world subsets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/segmentation.h"
#include "core/status.h"
#include "storage/manifest.h"

namespace cadenza {

class Vocabulary;

struct Piece {
  std::vector<int32_t> tokens;
  std::vector<int64_t> bar_offsets;   // token offset of each Bar token
  std::vector<int64_t> beat_offsets;  // token offset of each beat (see Segmentation)
};

class Dataset {
 public:
  // Reads manifest.json, refuses another vocabulary, checks that every shard exists and (if verify) its sha256.
  // The vocabulary must be the default grid's (what models train on) unless `any_grid`: then any grid this build
  // knows (inspect, detokenize).
  static StatusOr<std::unique_ptr<Dataset>> Open(const std::string& dir, bool verify_checksums = false,
                                                 bool any_grid = false);
  ~Dataset();

  const Manifest& manifest() const { return manifest_; }
  // The vocabulary of the dataset's tokens (its grid).
  const Vocabulary& vocabulary() const { return *vocabulary_; }
  const std::string& dir() const { return dir_; }
  int64_t num_pieces() const { return static_cast<int64_t>(manifest_.pieces.size()); }
  // Indices into manifest().pieces of one split.
  std::vector<int64_t> PiecesInSplit(Split split) const;
  // The pieces of `split` in the nested subset of `fraction` (SubsetKey < fraction; 1 = the whole split).
  std::vector<int64_t> PiecesInSubset(Split split, double fraction) const;
  // Shards owned by rank r of a world of w (round robin): each rank reads only these.
  static std::vector<int> ShardsForRank(int num_shards, int rank, int world);

  // Thread-safe (calls into the shards are serialised).
  StatusOr<Piece> ReadPiece(int64_t piece_index) const;
  // Indices into manifest().pieces of the pieces stored in `shard`, in storage order.
  std::vector<int64_t> PiecesInShard(int shard) const;
  // Every piece of one shard, in PiecesInShard order, reading each array of the shard once (whole).
  StatusOr<std::vector<Piece>> ReadShard(int shard) const;

 private:
  struct Impl;
  Dataset();
  std::string dir_;
  Manifest manifest_;
  const Vocabulary* vocabulary_ = nullptr;
  std::unique_ptr<Impl> impl_;
};

// A piece's key in [0, 1) for train.data_fraction subsets, from its manifest id (the content hash) alone, never
// its index, and mixed so that it is independent of the split hash: the subset of fraction f is the pieces with
// key < f, so a smaller fraction's subset lies inside a larger one's and the same f gives the same pieces.
double SubsetKey(const PieceMeta& piece);

struct Window {
  int64_t piece = 0;         // index into manifest().pieces
  int64_t start_token = 0;   // a bar boundary
  int64_t start_bar = 0;
};

struct WindowSamplerOptions {
  Split split = Split::kTrain;
  int64_t length = 256;      // tokens per window; windows near a piece's end are padded with PAD
  int64_t min_tokens = 32;   // a window must hold at least this many real tokens
  uint64_t seed = 0;
  int rank = 0;
  int world = 1;
  double fraction = 1.0;     // only the split's pieces with SubsetKey < fraction (1 = all of them)
  // false: a window at every bar line (training, validation). true: per piece, the first window at bar 0 and
  // each next one at the last bar line inside the previous window (its last token at the latest), so windows
  // tile the piece and a token is a target about once (scoring: NLL over a split without ~length/bar repeats).
  bool tile = false;
};

// Holds the tokens of its pieces in memory (one read per shard) so windows are a memcpy away.
class WindowSampler {
 public:
  static StatusOr<std::unique_ptr<WindowSampler>> Create(const Dataset& dataset, const WindowSamplerOptions& options);

  // All windows of the split (every bar start with enough tokens left), identical on every rank.
  int64_t num_windows_total() const { return static_cast<int64_t>(windows_.size()); }
  // This rank's windows for `epoch`: a seeded shuffle of all windows, then every world-th from rank.
  // Every rank gets the same count (the remainder is dropped), and ranks never share a window.
  std::vector<Window> Epoch(int64_t epoch) const;
  // Fills out[0..length) with the window's tokens (PAD after the piece's end); returns the real count.
  int64_t Read(const Window& window, int32_t* out) const;
  int64_t length() const { return options_.length; }

 private:
  WindowSampler() = default;
  WindowSamplerOptions options_;
  std::vector<Window> windows_;
  std::vector<std::vector<int32_t>> piece_tokens_;  // indexed by piece (empty for pieces not in the split)
};

}  // namespace cadenza
