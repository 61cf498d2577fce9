// Reading a dataset: manifest + open shards, random access to pieces, and the bar-aligned window sampler.
#include "storage/dataset.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/vocabulary.h"
#include "storage/hdf5_shard.h"
#include "storage/sha256.h"
#include "core/hash.h"

namespace cadenza {
namespace {

Piece ToPiece(ShardPiece&& p) {
  Piece piece;
  piece.tokens = std::move(p.tokens);
  piece.bar_offsets = std::move(p.bar_offsets);
  piece.beat_offsets = std::move(p.beat_offsets);
  return piece;
}

// SplitMix64 seeds the shuffle generator from (seed, epoch).
uint64_t SplitMix64(uint64_t* state) { return SplitMix64Next(state); }

// xoshiro256**: a small generator whose output is the same with every compiler and standard library.
class Xoshiro256 {
 public:
  Xoshiro256(uint64_t seed, uint64_t stream) {
    uint64_t sm = seed;
    const uint64_t a = SplitMix64(&sm);
    sm = stream ^ 0xD1B54A32D192ED03ULL;
    const uint64_t b = SplitMix64(&sm);
    uint64_t mixed = a ^ (b * 0x9E3779B97F4A7C15ULL);
    for (uint64_t& s : s_) s = SplitMix64(&mixed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, bound), without modulo bias (Lemire's multiply-and-reject).
  uint64_t Below(uint64_t bound) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) {
      const uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next()) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace

struct Dataset::Impl {
  // HDF5 serialises its own calls; this lock keeps the readers' use well-defined for any HDF5 build.
  mutable std::mutex mu;
  std::vector<std::unique_ptr<ShardReader>> readers;
  std::vector<int64_t> first_piece;  // manifest index of each shard's first piece, plus the total
};

Dataset::Dataset() : impl_(std::make_unique<Impl>()) {}
Dataset::~Dataset() = default;

StatusOr<std::unique_ptr<Dataset>> Dataset::Open(const std::string& dir, bool verify_checksums, bool any_grid) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(dir + ": no such dataset folder");
  const std::string manifest_path = (fs::path(dir) / "manifest.json").string();
  if (!fs::exists(manifest_path, ec)) {
    return NotFound(manifest_path + ": missing (is " + dir + " a dataset written by `cadenza ingest`?)");
  }
  StatusOr<Manifest> manifest = Manifest::Load(manifest_path);
  if (!manifest.ok()) return manifest.status();
  const Vocabulary* vocabulary = &Vocabulary::Get();
  if (any_grid) {
    const Vocabulary* found = Vocabulary::Find(manifest->vocab_name, manifest->vocab_version);
    if (found) vocabulary = found;
  }
  Status s = manifest->CheckVocabulary(manifest_path, *vocabulary);
  if (!s.ok()) return s;

  std::unique_ptr<Dataset> ds(new Dataset());
  ds->vocabulary_ = vocabulary;
  ds->dir_ = dir;
  ds->manifest_ = std::move(*manifest);
  const Manifest& m = ds->manifest_;
  Impl& impl = *ds->impl_;
  int64_t next_piece = 0;
  for (size_t i = 0; i < m.shards.size(); ++i) {
    const ShardInfo& info = m.shards[i];
    const std::string path = (fs::path(dir) / info.file).string();
    if (!fs::is_regular_file(path, ec)) {
      return NotFound(path + ": shard file is missing (listed as shards[" + std::to_string(i) + "] in " +
                      manifest_path + ")");
    }
    if (verify_checksums) {
      StatusOr<std::string> sha = Sha256File(path);
      if (!sha.ok()) return sha.status();
      if (*sha != info.sha256) {
        return DataLoss(path + ": checksum mismatch: manifest.json records sha256 " + info.sha256 +
                        " but the file has " + *sha + "; the shard is corrupt or was modified");
      }
    }
    StatusOr<std::unique_ptr<ShardReader>> reader = ShardReader::Open(path);
    if (!reader.ok()) return reader.status();
    const ShardReader& r = **reader;
    if (r.header().vocab_hash != m.vocab_hash || r.header().vocab_name != m.vocab_name ||
        r.header().vocab_version != m.vocab_version) {
      return DataLoss(path + ": vocabulary " + r.header().vocab_name + " v" +
                      std::to_string(r.header().vocab_version) + " (hash " + r.header().vocab_hash +
                      ") differs from manifest.json's (hash " + m.vocab_hash + ")");
    }
    if (r.header().shard_index != static_cast<int>(i)) {
      return DataLoss(path + ": shard_index attribute is " + std::to_string(r.header().shard_index) +
                      " but manifest.json lists it as shards[" + std::to_string(i) + "]");
    }
    if (r.num_pieces() != info.pieces || r.num_tokens() != info.tokens) {
      return DataLoss(path + ": holds " + std::to_string(r.num_pieces()) + " pieces / " +
                      std::to_string(r.num_tokens()) + " tokens but manifest.json says " +
                      std::to_string(info.pieces) + " / " + std::to_string(info.tokens));
    }
    impl.first_piece.push_back(next_piece);
    for (int64_t k = 0; k < r.num_pieces(); ++k) {
      const PieceMeta& meta = m.pieces[next_piece + k];
      const int64_t tokens = r.piece_token_offsets()[k + 1] - r.piece_token_offsets()[k];
      if (r.piece_ids()[k] != meta.id || tokens != meta.tokens) {
        return DataLoss(path + ": piece " + std::to_string(k) + " is " + r.piece_ids()[k] + " with " +
                        std::to_string(tokens) + " tokens but manifest.json lists pieces[" +
                        std::to_string(next_piece + k) + "] = " + meta.id + " with " + std::to_string(meta.tokens));
      }
    }
    next_piece += r.num_pieces();
    impl.readers.push_back(std::move(*reader));
  }
  impl.first_piece.push_back(next_piece);
  return ds;
}

std::vector<int64_t> Dataset::PiecesInSplit(Split split) const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < manifest_.pieces.size(); ++i) {
    if (manifest_.pieces[i].split == split) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

double SubsetKey(const PieceMeta& piece) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the id, then a SplitMix64 finaliser with a salt of its own
  for (unsigned char c : piece.id) h = (h ^ c) * 1099511628211ull;
  return UnitInterval(Mix64(h ^ 0x5eed5ca1ab1e0000ull));
}

std::vector<int64_t> Dataset::PiecesInSubset(Split split, double fraction) const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < manifest_.pieces.size(); ++i) {
    const PieceMeta& p = manifest_.pieces[i];
    if (p.split == split && (fraction >= 1.0 || SubsetKey(p) < fraction)) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

std::vector<int> Dataset::ShardsForRank(int num_shards, int rank, int world) {
  std::vector<int> out;
  if (world < 1 || rank < 0 || rank >= world) return out;
  for (int s = rank; s < num_shards; s += world) out.push_back(s);
  return out;
}

StatusOr<Piece> Dataset::ReadPiece(int64_t piece_index) const {
  if (piece_index < 0 || piece_index >= num_pieces()) {
    return InvalidArgument(dir_ + ": piece " + std::to_string(piece_index) + " out of range (dataset holds " +
                           std::to_string(num_pieces()) + ")");
  }
  const PieceMeta& meta = manifest_.pieces[piece_index];
  StatusOr<ShardPiece> piece = [&] {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->readers[meta.shard]->ReadPiece(meta.index_in_shard);
  }();
  if (!piece.ok()) return piece.status();
  return ToPiece(std::move(*piece));
}

std::vector<int64_t> Dataset::PiecesInShard(int shard) const {
  std::vector<int64_t> out;
  if (shard < 0 || shard >= static_cast<int>(impl_->readers.size())) return out;
  for (int64_t i = impl_->first_piece[shard]; i < impl_->first_piece[shard + 1]; ++i) out.push_back(i);
  return out;
}

StatusOr<std::vector<Piece>> Dataset::ReadShard(int shard) const {
  if (shard < 0 || shard >= static_cast<int>(impl_->readers.size())) {
    return InvalidArgument(dir_ + ": shard " + std::to_string(shard) + " out of range (dataset has " +
                           std::to_string(impl_->readers.size()) + ")");
  }
  StatusOr<std::vector<ShardPiece>> pieces = [&] {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->readers[shard]->ReadAll();
  }();
  if (!pieces.ok()) return pieces.status();
  std::vector<Piece> out;
  out.reserve(pieces->size());
  for (ShardPiece& p : *pieces) out.push_back(ToPiece(std::move(p)));
  return out;
}

StatusOr<std::unique_ptr<WindowSampler>> WindowSampler::Create(const Dataset& dataset,
                                                               const WindowSamplerOptions& options) {
  if (options.length < 1) return InvalidArgument("window length must be >= 1");
  if (options.min_tokens < 1 || options.min_tokens > options.length) {
    return InvalidArgument("window min_tokens must be in 1..length (" + std::to_string(options.length) + "), got " +
                           std::to_string(options.min_tokens));
  }
  if (options.world < 1) return InvalidArgument("world size must be >= 1");
  if (options.rank < 0 || options.rank >= options.world) {
    return InvalidArgument("rank " + std::to_string(options.rank) + " outside 0.." +
                           std::to_string(options.world - 1));
  }
  std::unique_ptr<WindowSampler> sampler(new WindowSampler());
  sampler->options_ = options;
  sampler->piece_tokens_.resize(dataset.num_pieces());
  const Manifest& m = dataset.manifest();
  for (int shard = 0; shard < static_cast<int>(m.shards.size()); ++shard) {
    const std::vector<int64_t> indices = dataset.PiecesInShard(shard);
    auto in_subset = [&](int64_t i) {
      return m.pieces[i].split == options.split && (options.fraction >= 1.0 || SubsetKey(m.pieces[i]) < options.fraction);
    };
    const bool wanted = std::any_of(indices.begin(), indices.end(), in_subset);
    if (!wanted) continue;
    StatusOr<std::vector<Piece>> pieces = dataset.ReadShard(shard);
    if (!pieces.ok()) return pieces.status();
    for (size_t k = 0; k < indices.size(); ++k) {
      const int64_t index = indices[k];
      if (!in_subset(index)) continue;
      Piece& piece = (*pieces)[k];
      const int64_t size = static_cast<int64_t>(piece.tokens.size());
      const std::vector<int64_t>& bars = piece.bar_offsets;
      for (size_t b = 0; b < bars.size();) {
        const int64_t start = bars[b];
        // A tiling keeps a short last window too: its tokens are scored nowhere else.
        const int64_t needed = options.tile && b > 0 ? std::min<int64_t>(2, options.min_tokens) : options.min_tokens;
        if (size - start >= needed) sampler->windows_.push_back(Window{index, start, static_cast<int64_t>(b)});
        if (!options.tile) {
          ++b;
          continue;
        }
        if (start + options.length >= size) break;  // this window reaches the piece's end
        // The next window starts at the last bar line at or before this window's last token (at least one bar on).
        size_t next = b + 1;
        while (next + 1 < bars.size() && bars[next + 1] <= start + options.length - 1) ++next;
        b = next;
      }
      sampler->piece_tokens_[index] = std::move(piece.tokens);
    }
  }
  return sampler;
}

std::vector<Window> WindowSampler::Epoch(int64_t epoch) const {
  std::vector<size_t> order(windows_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Xoshiro256 rng(options_.seed, static_cast<uint64_t>(epoch));
  for (size_t i = order.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.Below(i));
    std::swap(order[i - 1], order[j]);
  }
  const size_t world = static_cast<size_t>(options_.world);
  const size_t per_rank = order.size() / world;
  std::vector<Window> out;
  out.reserve(per_rank);
  for (size_t k = 0; k < per_rank; ++k) out.push_back(windows_[order[k * world + options_.rank]]);
  return out;
}

int64_t WindowSampler::Read(const Window& window, int32_t* out) const {
  const int64_t length = options_.length;
  if (window.piece < 0 || window.piece >= static_cast<int64_t>(piece_tokens_.size())) {
    std::fill(out, out + length, 0);
    return 0;
  }
  const std::vector<int32_t>& tokens = piece_tokens_[window.piece];
  const int64_t size = static_cast<int64_t>(tokens.size());
  const int64_t start = std::clamp<int64_t>(window.start_token, 0, size);
  const int64_t n = std::min(length, size - start);
  if (n > 0) std::memcpy(out, tokens.data() + start, static_cast<size_t>(n) * sizeof(int32_t));
  std::fill(out + n, out + length, 0);
  return n;
}

}  // namespace cadenza
