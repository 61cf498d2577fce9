// One HDF5 shard file of a dataset: tokens with piece/bar/beat offsets (schema in docs/storage.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/segmentation.h"
#include "core/status.h"

namespace cadenza {

constexpr int kShardFormatVersion = 1;
constexpr int64_t kShardTokenChunk = 1 << 16;  // elements per HDF5 chunk of /tokens

// One piece as stored in a shard. All offsets are relative to the piece's first token.
struct ShardPiece {
  std::string id;
  std::vector<int32_t> tokens;
  std::vector<int64_t> bar_offsets;      // token offset of each Bar token
  std::vector<int64_t> beat_offsets;     // token offset of each beat (Segmentation::beat_token_offsets)
  std::vector<int32_t> bar_start_steps;  // grid steps from the piece start, per bar
  std::vector<int16_t> bar_meters;       // numerator, denominator of each bar: [2 * bars]
};

ShardPiece MakeShardPiece(std::string id, std::vector<int32_t> tokens, const Segmentation& segmentation);

// "shard-00003.h5"
std::string ShardFileName(int shard_index);

class Vocabulary;

// Writes "<path>.tmp", fsyncs it and renames it to `path`. HDF5 holds one global lock: call from one thread.
// The shard records the vocabulary (the default grid's unless another is given).
Status WriteShard(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces);
Status WriteShard(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces,
                  const Vocabulary& vocabulary);
// WriteShard without fsync: the temp file is renamed into place, but neither it nor its folder is synced. For a
// caller that syncs every file of a folder once, before it publishes the folder (Ingest: one batch of fsyncs instead
// of four per shard; a shard reused after a crash is checked against its recorded sha256 first).
Status WriteShardUnsynced(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces,
                          const Vocabulary& vocabulary);

// The root attributes of a shard.
struct ShardHeader {
  std::string vocab_name;
  int vocab_version = 0;
  std::string vocab_hash;
  int format_version = 0;
  int shard_index = 0;
};

// An open shard: the small index arrays are read at Open, tokens and per-bar arrays on demand.
class ShardReader {
 public:
  // Validates the layout (datasets, shapes, monotone offsets); errors name the file and the dataset.
  static StatusOr<std::unique_ptr<ShardReader>> Open(const std::string& path);
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  const std::string& path() const { return path_; }
  const ShardHeader& header() const { return header_; }
  int64_t num_pieces() const { return static_cast<int64_t>(piece_ids_.size()); }
  int64_t num_tokens() const { return piece_token_offsets_.back(); }
  const std::vector<std::string>& piece_ids() const { return piece_ids_; }
  const std::vector<int64_t>& piece_token_offsets() const { return piece_token_offsets_; }

  // One piece by hyperslab reads. Not synchronised: callers serialise access to one reader.
  StatusOr<ShardPiece> ReadPiece(int64_t index) const;
  // Every piece, reading each dataset once, whole.
  StatusOr<std::vector<ShardPiece>> ReadAll() const;

 private:
  struct Handles;
  ShardReader() = default;
  Status CheckPiece(int64_t index, const ShardPiece& piece) const;

  std::string path_;
  ShardHeader header_;
  std::vector<std::string> piece_ids_;
  std::vector<int64_t> piece_token_offsets_;  // [pieces + 1]
  std::vector<int64_t> piece_bar_offsets_;    // [pieces + 1]
  std::vector<int64_t> piece_beat_offsets_;   // [pieces + 1]
  std::unique_ptr<Handles> handles_;
};

}  // namespace cadenza
