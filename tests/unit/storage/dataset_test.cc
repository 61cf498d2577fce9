// Tests of shard files, Dataset (random access, checksums, errors) and the bar-aligned WindowSampler.
#include "storage/dataset.h"
#include "storage/training_windows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <set>

#include "core/midi.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"
#include "storage/hdf5_shard.h"
#include "storage/ingest.h"
#include "tests/unit/storage/storage_test_util.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

EncodedPiece Encode(const Score& score) {
  StatusOr<EncodedPiece> e = Tokenizer().Encode(score);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? std::move(*e) : EncodedPiece();
}

std::vector<int64_t> BarOffsets(const Segmentation& seg) {
  std::vector<int64_t> out;
  for (const BarInfo& b : seg.bars) out.push_back(b.token_offset);
  return out;
}

TEST(ShardTest, WriteThenReadRoundTripsTokensBarsAndBeats) {
  testing::TempDir dir;
  std::vector<ShardPiece> pieces;
  std::vector<EncodedPiece> encoded;
  const int meters[][2] = {{4, 4}, {3, 4}, {6, 8}, {2, 2}, {5, 4}};
  for (int i = 0; i < 5; ++i) {
    encoded.push_back(Encode(testing::MakeTune(i, 3 + i, meters[i][0], meters[i][1])));
    char id[17];
    std::snprintf(id, sizeof id, "%016x", 0xabc0 + i);
    pieces.push_back(MakeShardPiece(id, encoded.back().tokens, encoded.back().segmentation));
  }
  pieces.push_back(ShardPiece{"00000000000000ee", {}, {}, {}, {}, {}});  // an empty piece is legal too
  std::vector<const ShardPiece*> ptrs;
  for (const ShardPiece& p : pieces) ptrs.push_back(&p);
  const std::string path = dir / "shard-00007.h5";
  ASSERT_TRUE(WriteShard(path, 7, ptrs).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  StatusOr<std::unique_ptr<ShardReader>> reader = ShardReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  const ShardReader& r = **reader;
  EXPECT_EQ(r.header().shard_index, 7);
  EXPECT_EQ(r.header().vocab_name, Vocabulary::Get().name());
  EXPECT_EQ(r.header().vocab_version, Vocabulary::kVersion);
  EXPECT_EQ(r.header().vocab_hash, Vocabulary::Get().HashHex());
  EXPECT_EQ(r.header().format_version, kShardFormatVersion);
  ASSERT_EQ(r.num_pieces(), 6);
  StatusOr<std::vector<ShardPiece>> all = r.ReadAll();
  ASSERT_TRUE(all.ok()) << all.status().message();
  for (int i = 0; i < 5; ++i) {
    StatusOr<ShardPiece> p = r.ReadPiece(i);
    ASSERT_TRUE(p.ok()) << p.status().message();
    const Segmentation& seg = encoded[i].segmentation;
    EXPECT_EQ(p->id, pieces[i].id);
    EXPECT_EQ(p->tokens, encoded[i].tokens) << "piece " << i;
    EXPECT_EQ(p->bar_offsets, BarOffsets(seg)) << "piece " << i;
    EXPECT_EQ(p->beat_offsets, seg.beat_token_offsets) << "piece " << i;
    ASSERT_EQ(p->bar_start_steps.size(), seg.bars.size());
    for (size_t b = 0; b < seg.bars.size(); ++b) {
      EXPECT_EQ(p->bar_start_steps[b], seg.bars[b].start_step);
      EXPECT_EQ(p->bar_meters[2 * b], seg.bars[b].numerator);
      EXPECT_EQ(p->bar_meters[2 * b + 1], seg.bars[b].denominator);
    }
    EXPECT_EQ((*all)[i].tokens, p->tokens);
    EXPECT_EQ((*all)[i].bar_offsets, p->bar_offsets);
    EXPECT_EQ((*all)[i].beat_offsets, p->beat_offsets);
  }
  StatusOr<ShardPiece> empty = r.ReadPiece(5);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->tokens.empty());
  EXPECT_FALSE(r.ReadPiece(6).ok());
}

TEST(ShardTest, SamePiecesGiveIdenticalBytes) {
  testing::TempDir dir;
  EncodedPiece e = Encode(testing::MakeTune(3, 6));
  ShardPiece piece = MakeShardPiece("0000000000000003", e.tokens, e.segmentation);
  ASSERT_TRUE(WriteShard(dir / "a.h5", 0, {&piece}).ok());
  ASSERT_TRUE(WriteShard(dir / "b.h5", 0, {&piece}).ok());
  EXPECT_EQ(testing::ReadText(dir / "a.h5"), testing::ReadText(dir / "b.h5"));
}

TEST(ShardTest, OpenOfNonHdf5FileNamesIt) {
  testing::TempDir dir;
  testing::WriteBytes(dir / "shard-00000.h5", "definitely not HDF5");
  StatusOr<std::unique_ptr<ShardReader>> r = ShardReader::Open(dir / "shard-00000.h5");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(dir / "shard-00000.h5"), std::string::npos) << r.status().message();
}

// One dataset of 40 tunes in 3 shards, shared by the tests below (ingest is what the CLI runs).
class DatasetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const int meters[][2] = {{4, 4}, {3, 4}, {6, 8}, {2, 4}, {12, 8}};
    for (int i = 0; i < 40; ++i) {
      Score s = testing::MakeTune(i, 6 + i % 9, meters[i % 5][0], meters[i % 5][1]);
      ASSERT_EQ(testing::WriteTune(s, *dir_ / ("midi/tune" + std::to_string(100 + i) + ".mid")), "");
    }
    IngestOptions o;
    o.input_dir = *dir_ / "midi";
    o.out_dir = *dir_ / "ds";
    o.shards = 3;
    o.val_fraction = 0.2;
    o.test_fraction = 0.1;
    o.jobs = 2;
    o.progress = false;
    IngestReport report;
    Status s = Ingest(o, &report);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(report.pieces, 40);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  // A copy of the dataset that a test may damage.
  std::string CopyDataset(const testing::TempDir& to) {
    const std::string dst = to / "ds";
    fs::copy(*dir_ / "ds", dst, fs::copy_options::recursive);
    return dst;
  }
  std::unique_ptr<Dataset> OpenDataset() {
    StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(*dir_ / "ds");
    EXPECT_TRUE(ds.ok()) << ds.status().message();
    return ds.ok() ? std::move(*ds) : nullptr;
  }
  std::unique_ptr<WindowSampler> Sampler(uint64_t seed, int rank, int world, int64_t length = 64,
                                         Split split = Split::kTrain) {
    if (!dataset_) dataset_ = OpenDataset();
    WindowSamplerOptions o;
    o.split = split;
    o.length = length;
    o.min_tokens = 16;
    o.seed = seed;
    o.rank = rank;
    o.world = world;
    StatusOr<std::unique_ptr<WindowSampler>> s = WindowSampler::Create(*dataset_, o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static testing::TempDir* dir_;
  std::unique_ptr<Dataset> dataset_;
};
testing::TempDir* DatasetTest::dir_ = nullptr;

TEST_F(DatasetTest, ReadPieceMatchesEncodingTheSourceFile) {
  std::unique_ptr<Dataset> ds = OpenDataset();
  ASSERT_TRUE(ds);
  ASSERT_EQ(ds->num_pieces(), 40);
  EXPECT_EQ(ds->manifest().shards.size(), 3u);
  for (int64_t i = 0; i < ds->num_pieces(); ++i) {
    const PieceMeta& meta = ds->manifest().pieces[i];
    StatusOr<Score> score = ReadMidiFile(*dir_ / ("midi/" + meta.source));
    ASSERT_TRUE(score.ok()) << score.status().message();
    EncodedPiece e = Encode(*score);
    StatusOr<Piece> piece = ds->ReadPiece(i);
    ASSERT_TRUE(piece.ok()) << piece.status().message();
    EXPECT_EQ(piece->tokens, e.tokens) << meta.source;
    EXPECT_EQ(piece->bar_offsets, BarOffsets(e.segmentation)) << meta.source;
    EXPECT_EQ(piece->beat_offsets, e.segmentation.beat_token_offsets) << meta.source;
    EXPECT_EQ(meta.tokens, static_cast<int64_t>(e.tokens.size()));
    EXPECT_EQ(meta.bars, static_cast<int64_t>(e.segmentation.bars.size()));
  }
  EXPECT_FALSE(ds->ReadPiece(40).ok());
  EXPECT_FALSE(ds->ReadPiece(-1).ok());
}

TEST_F(DatasetTest, ReadShardMatchesReadPiece) {
  std::unique_ptr<Dataset> ds = OpenDataset();
  ASSERT_TRUE(ds);
  int64_t total = 0;
  for (int s = 0; s < 3; ++s) {
    StatusOr<std::vector<Piece>> pieces = ds->ReadShard(s);
    ASSERT_TRUE(pieces.ok()) << pieces.status().message();
    const std::vector<int64_t> indices = ds->PiecesInShard(s);
    ASSERT_EQ(pieces->size(), indices.size());
    for (size_t k = 0; k < indices.size(); ++k) {
      EXPECT_EQ(ds->manifest().pieces[indices[k]].shard, s);
      EXPECT_EQ((*pieces)[k].tokens, ds->ReadPiece(indices[k])->tokens);
    }
    total += static_cast<int64_t>(indices.size());
  }
  EXPECT_EQ(total, 40);
}

TEST_F(DatasetTest, SplitsPartitionThePieces) {
  std::unique_ptr<Dataset> ds = OpenDataset();
  ASSERT_TRUE(ds);
  const size_t train = ds->PiecesInSplit(Split::kTrain).size();
  const size_t val = ds->PiecesInSplit(Split::kVal).size();
  const size_t test = ds->PiecesInSplit(Split::kTest).size();
  EXPECT_EQ(train + val + test, 40u);
  EXPECT_GT(train, val + test);
}

TEST_F(DatasetTest, ShardsForRankIsRoundRobin) {
  EXPECT_EQ(Dataset::ShardsForRank(5, 0, 2), (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(Dataset::ShardsForRank(5, 1, 2), (std::vector<int>{1, 3}));
  EXPECT_EQ(Dataset::ShardsForRank(2, 2, 3), (std::vector<int>{}));
}

TEST_F(DatasetTest, VerifiedOpenOfIntactDatasetSucceeds) {
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(*dir_ / "ds", /*verify_checksums=*/true);
  EXPECT_TRUE(ds.ok()) << ds.status().message();
}

TEST_F(DatasetTest, CorruptedShardByteIsNamedByVerify) {
  testing::TempDir tmp;
  const std::string ds_dir = CopyDataset(tmp);
  const std::string shard = ds_dir + "/shard-00001.h5";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(shard) / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5A);
    f.seekp(static_cast<std::streamoff>(fs::file_size(shard) / 2));
    f.write(&c, 1);
  }
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(ds_dir, /*verify_checksums=*/true);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(ds.status().message().find("shard-00001.h5"), std::string::npos) << ds.status().message();
  EXPECT_NE(ds.status().message().find("checksum mismatch"), std::string::npos) << ds.status().message();
}

TEST_F(DatasetTest, MissingShardIsNamed) {
  testing::TempDir tmp;
  const std::string ds_dir = CopyDataset(tmp);
  fs::remove(ds_dir + "/shard-00002.h5");
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(ds_dir);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find(ds_dir + "/shard-00002.h5: shard file is missing"), std::string::npos)
      << ds.status().message();
}

TEST_F(DatasetTest, MissingFolderOrManifestIsNamed) {
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(*dir_ / "no-such-ds");
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("no-such-ds"), std::string::npos);
  ds = Dataset::Open(*dir_ / "midi");
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("manifest.json"), std::string::npos) << ds.status().message();
}

TEST_F(DatasetTest, OtherVocabularyIsRefusedOnOpen) {
  testing::TempDir tmp;
  const std::string ds_dir = CopyDataset(tmp);
  StatusOr<Manifest> m = Manifest::Load(ds_dir + "/manifest.json");
  ASSERT_TRUE(m.ok());
  m->vocab_version = Vocabulary::kVersion + 1;
  ASSERT_TRUE(m->Save(ds_dir + "/manifest.json").ok());
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(ds_dir);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(ds.status().message().find("v" + std::to_string(Vocabulary::kVersion + 1)), std::string::npos)
      << ds.status().message();
}

TEST_F(DatasetTest, ManifestThatDisagreesWithShardIsRefused) {
  testing::TempDir tmp;
  const std::string ds_dir = CopyDataset(tmp);
  StatusOr<Manifest> m = Manifest::Load(ds_dir + "/manifest.json");
  ASSERT_TRUE(m.ok());
  std::swap(m->pieces[0].id, m->pieces[1].id);
  ASSERT_TRUE(m->Save(ds_dir + "/manifest.json").ok());
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(ds_dir);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("shard-00000.h5"), std::string::npos) << ds.status().message();
}

TEST_F(DatasetTest, WindowsStartOnBarTokens) {
  std::unique_ptr<WindowSampler> sampler = Sampler(1, 0, 1);
  ASSERT_TRUE(sampler);
  std::vector<Window> windows = sampler->Epoch(0);
  ASSERT_EQ(static_cast<int64_t>(windows.size()), sampler->num_windows_total());
  ASSERT_GT(windows.size(), 100u);
  std::vector<int32_t> buf(sampler->length());
  for (const Window& w : windows) {
    const int64_t n = sampler->Read(w, buf.data());
    EXPECT_EQ(buf[0], Vocabulary::Get().Bar()) << "piece " << w.piece << " token " << w.start_token;
    EXPECT_GE(n, 16);
    EXPECT_LE(n, sampler->length());
    for (int64_t i = n; i < sampler->length(); ++i) ASSERT_EQ(buf[i], Vocabulary::Get().Pad());
    for (int64_t i = 0; i < n; ++i) ASSERT_NE(buf[i], Vocabulary::Get().Pad());
  }
}

TEST_F(DatasetTest, WindowsAreEveryBarWithEnoughTokensLeft) {
  std::unique_ptr<WindowSampler> sampler = Sampler(1, 0, 1);
  ASSERT_TRUE(sampler);
  std::unique_ptr<Dataset> ds = OpenDataset();
  int64_t expected = 0;
  for (int64_t i : ds->PiecesInSplit(Split::kTrain)) {
    StatusOr<Piece> p = ds->ReadPiece(i);
    ASSERT_TRUE(p.ok());
    for (int64_t o : p->bar_offsets) expected += static_cast<int64_t>(p->tokens.size()) - o >= 16;
  }
  EXPECT_EQ(sampler->num_windows_total(), expected);
  // The val split gives other windows.
  std::unique_ptr<WindowSampler> val = Sampler(1, 0, 1, 64, Split::kVal);
  ASSERT_TRUE(val);
  EXPECT_GT(val->num_windows_total(), 0);
  EXPECT_NE(val->num_windows_total(), expected);
}

using WindowKey = std::pair<int64_t, int64_t>;

TEST_F(DatasetTest, RanksAreDisjointEqualSizedAndCoverAllButFewerThanWorld) {
  for (int world : {2, 3}) {
    std::set<WindowKey> seen;
    size_t per_rank = 0;
    int64_t total = 0;
    for (int rank = 0; rank < world; ++rank) {
      std::unique_ptr<WindowSampler> sampler = Sampler(7, rank, world);
      ASSERT_TRUE(sampler);
      total = sampler->num_windows_total();
      std::vector<Window> windows = sampler->Epoch(3);
      if (rank == 0) per_rank = windows.size();
      EXPECT_EQ(windows.size(), per_rank) << "world " << world << " rank " << rank;
      for (const Window& w : windows) {
        EXPECT_TRUE(seen.insert({w.piece, w.start_token}).second) << "window shared by ranks, world " << world;
      }
    }
    EXPECT_EQ(per_rank, static_cast<size_t>(total / world));
    EXPECT_LT(total - static_cast<int64_t>(seen.size()), world);
  }
}

TEST_F(DatasetTest, EpochsAreDeterministicBySeedAndDifferByEpoch) {
  std::unique_ptr<WindowSampler> a = Sampler(42, 0, 1);
  std::unique_ptr<WindowSampler> b = Sampler(42, 0, 1);
  std::unique_ptr<WindowSampler> c = Sampler(43, 0, 1);
  ASSERT_TRUE(a && b && c);
  auto keys = [](const std::vector<Window>& ws) {
    std::vector<WindowKey> out;
    for (const Window& w : ws) out.push_back({w.piece, w.start_token});
    return out;
  };
  EXPECT_EQ(keys(a->Epoch(0)), keys(b->Epoch(0)));
  EXPECT_EQ(keys(a->Epoch(5)), keys(b->Epoch(5)));
  EXPECT_NE(keys(a->Epoch(0)), keys(a->Epoch(1)));
  EXPECT_NE(keys(a->Epoch(0)), keys(c->Epoch(0)));
  // A shuffle, not a different set.
  std::vector<WindowKey> e0 = keys(a->Epoch(0)), e1 = keys(a->Epoch(1));
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, e1);
}

TEST_F(DatasetTest, InvalidSamplerOptionsAreRefused) {
  std::unique_ptr<Dataset> ds = OpenDataset();
  WindowSamplerOptions o;
  o.rank = 2;
  o.world = 2;
  EXPECT_FALSE(WindowSampler::Create(*ds, o).ok());
  o = WindowSamplerOptions();
  o.min_tokens = o.length + 1;
  EXPECT_FALSE(WindowSampler::Create(*ds, o).ok());
}

TEST_F(DatasetTest, TrainingWindowsAreTheSamplersEpochInOrder) {
  if (!dataset_) dataset_ = OpenDataset();
  WindowSamplerOptions o;
  o.length = 64;
  o.min_tokens = 16;
  o.seed = 4;
  auto windows = DatasetWindows::Create(*dataset_, o);
  ASSERT_TRUE(windows.ok()) << windows.status().message();
  std::unique_ptr<WindowSampler> sampler = Sampler(4, 0, 1, 64);
  const std::vector<Window> epoch = sampler->Epoch(2);
  ASSERT_EQ((*windows)->WindowsPerEpoch(), static_cast<int64_t>(epoch.size()));
  std::vector<int32_t> batch(3 * 64), expected(64);
  (*windows)->Fill(2, 5, 3, batch.data());
  for (int i = 0; i < 3; ++i) {
    sampler->Read(epoch[5 + i], expected.data());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), batch.begin() + i * 64)) << "window " << i;
  }
  // A split without a window of this length is refused with the dataset, split and length named.
  o.split = Split::kTest;
  o.length = 100000;
  o.min_tokens = 100000;  // more real tokens than any piece has
  auto none = DatasetWindows::Create(*dataset_, o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("test split has no window of 100000 tokens"), std::string::npos)
      << none.status().message();
}

// train.data_fraction: nested subsets of the train split keyed by piece identity, never val or test.
TEST_F(DatasetTest, TrainSubsetsAreNestedKeyedByPieceIdAndDeterministic) {
  if (!dataset_) dataset_ = OpenDataset();
  const std::vector<int64_t> all = dataset_->PiecesInSplit(Split::kTrain);
  const std::vector<int64_t> quarter = dataset_->PiecesInSubset(Split::kTrain, 0.25);
  const std::vector<int64_t> half = dataset_->PiecesInSubset(Split::kTrain, 0.5);
  EXPECT_EQ(dataset_->PiecesInSubset(Split::kTrain, 1.0), all);
  EXPECT_EQ(dataset_->PiecesInSubset(Split::kTrain, 0.25), quarter) << "the same fraction gives the same pieces";
  EXPECT_LT(quarter.size(), half.size());
  EXPECT_LT(half.size(), all.size());
  const std::set<int64_t> half_set(half.begin(), half.end());
  for (int64_t i : quarter) EXPECT_TRUE(half_set.count(i)) << "piece " << i << " is in the 25% subset but not the 50%";
  // The key is the piece's identity (its content-hash id), not where it is stored.
  PieceMeta moved = dataset_->manifest().pieces[all[0]];
  const double key = SubsetKey(moved);
  moved.shard += 5;
  moved.index_in_shard += 17;
  moved.source = "elsewhere.mid";
  EXPECT_EQ(SubsetKey(moved), key);
  moved.id = "0123456789abcdef";
  EXPECT_NE(SubsetKey(moved), key);
}

TEST_F(DatasetTest, DataFractionSubsetsOnlyTheTrainWindows) {
  ExperimentConfig c;
  c.dataset = *dir_ / "ds";
  c.train.seq_len = 63;
  auto full = OpenExperimentWindows(c);
  ASSERT_TRUE(full.ok()) << full.status().message();
  c.train.data_fraction = 0.5;
  auto half = OpenExperimentWindows(c);
  ASSERT_TRUE(half.ok()) << half.status().message();
  const std::vector<int64_t> subset = half->dataset->PiecesInSubset(Split::kTrain, 0.5);
  EXPECT_EQ(half->train_pieces, static_cast<int64_t>(subset.size()));
  EXPECT_EQ(full->train_pieces, static_cast<int64_t>(full->dataset->PiecesInSplit(Split::kTrain).size()));
  int64_t tokens = 0;
  for (int64_t i : subset) tokens += half->dataset->manifest().pieces[i].tokens;
  EXPECT_EQ(half->train_tokens, tokens);
  EXPECT_LT(half->train_tokens, full->train_tokens);
  EXPECT_LT(half->train->WindowsPerEpoch(), full->train->WindowsPerEpoch());
  EXPECT_EQ(half->val->WindowsPerEpoch(), full->val->WindowsPerEpoch()) << "val is never subset";
  // Every train window comes from a piece of the subset.
  WindowSamplerOptions o;
  o.length = 64;
  o.min_tokens = 32;
  o.fraction = 0.5;
  auto sampler = WindowSampler::Create(*half->dataset, o);
  ASSERT_TRUE(sampler.ok());
  const std::set<int64_t> in(subset.begin(), subset.end());
  for (const Window& w : (*sampler)->Epoch(0)) EXPECT_TRUE(in.count(w.piece)) << "window of piece " << w.piece;
  EXPECT_EQ((*sampler)->Epoch(0).size(), static_cast<size_t>(half->train->WindowsPerEpoch()));
}

TEST_F(DatasetTest, DataFractionThatSelectsNoPieceIsNamed) {
  ExperimentConfig c;
  c.dataset = *dir_ / "ds";
  c.train.seq_len = 63;
  c.train.data_fraction = 1e-12;
  auto none = OpenExperimentWindows(c);
  ASSERT_FALSE(none.ok());
  const std::string train_pieces = std::to_string(OpenDataset()->PiecesInSplit(Split::kTrain).size());
  EXPECT_NE(none.status().message().find("train.data_fraction"), std::string::npos) << none.status().message();
  EXPECT_NE(none.status().message().find("none of the " + train_pieces + " pieces"), std::string::npos)
      << none.status().message();
}

TEST_F(DatasetTest, EpochsResolveToStepsOverTheSubsetTokens) {
  ExperimentConfig c;
  c.dataset = *dir_ / "ds";
  c.train.seq_len = 63;
  c.train.batch_size = 4;
  c.train.steps = 7;
  c.train.data_fraction = 0.5;
  auto w = OpenExperimentWindows(c);
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_TRUE(ResolveTrainSteps(&c, w->train_tokens).ok());
  EXPECT_EQ(c.train.steps, 7) << "epochs 0 keeps train.steps";
  c.train.epochs = 2.5;
  ASSERT_TRUE(ResolveTrainSteps(&c, w->train_tokens).ok());
  EXPECT_EQ(c.train.steps, static_cast<int64_t>(std::ceil(2.5 * double(w->train_tokens) / (4.0 * 63.0))));
  EXPECT_NE(c.ToYaml().find("steps: " + std::to_string(c.train.steps)), std::string::npos) << c.ToYaml();
}

TEST_F(DatasetTest, SplitWindowsAreEveryWindowOfTheSplit) {
  if (!dataset_) dataset_ = OpenDataset();
  auto windows = OpenSplitWindows(*dataset_, Split::kVal, 63, /*tile=*/false);
  ASSERT_TRUE(windows.ok()) << windows.status().message();
  WindowSamplerOptions o;
  o.split = Split::kVal;
  o.length = 64;
  o.min_tokens = 32;
  auto sampler = WindowSampler::Create(*dataset_, o);
  ASSERT_TRUE(sampler.ok());
  EXPECT_EQ((*windows)->WindowsPerEpoch(), (*sampler)->num_windows_total());
  EXPECT_EQ((*windows)->length(), 64);
}

// Scoring windows tile each piece: every token after the first Bar is a target of some window, a target is
// repeated only inside the last bar of the window before, and far fewer windows than one per bar line.
TEST_F(DatasetTest, TiledWindowsScoreEveryTokenAboutOnce) {
  if (!dataset_) dataset_ = OpenDataset();
  WindowSamplerOptions o;
  o.split = Split::kVal;
  o.length = 200;  // several bars: a tiling then needs far fewer windows than one per bar
  o.min_tokens = 32;
  o.tile = true;
  auto tiled = WindowSampler::Create(*dataset_, o);
  ASSERT_TRUE(tiled.ok()) << tiled.status().message();
  o.tile = false;
  auto every = WindowSampler::Create(*dataset_, o);
  ASSERT_TRUE(every.ok());
  std::map<int64_t, std::vector<int64_t>> starts;  // piece -> window starts
  for (const Window& w : (*tiled)->Epoch(0)) starts[w.piece].push_back(w.start_token);
  ASSERT_FALSE(starts.empty());
  int64_t targets = 0, repeated = 0, tokens = 0;
  for (auto& [index, list] : starts) {
    auto piece = dataset_->ReadPiece(index);
    ASSERT_TRUE(piece.ok());
    const int64_t size = static_cast<int64_t>(piece->tokens.size());
    std::sort(list.begin(), list.end());
    EXPECT_EQ(list.front(), piece->bar_offsets.front()) << "the first window starts at the piece's first bar";
    std::vector<int> hits(size, 0);
    for (int64_t start : list) {
      EXPECT_TRUE(std::binary_search(piece->bar_offsets.begin(), piece->bar_offsets.end(), start)) << start;
      for (int64_t t = start + 1; t < std::min(size, start + o.length); ++t) ++hits[t];
    }
    for (int64_t t = piece->bar_offsets.front() + 1; t < size; ++t) {  // windows start at a bar: BOS is never a target
      EXPECT_GE(hits[t], 1) << "piece " << index << " token " << t << " is scored by no window";
      targets += hits[t];
      repeated += hits[t] > 1 ? 1 : 0;
    }
    tokens += size - 1;
  }
  EXPECT_LT(double(repeated), 0.5 * double(tokens)) << "overlaps stay under one bar per window";
  EXPECT_LT((*tiled)->num_windows_total() * 3, (*every)->num_windows_total());
  EXPECT_GE(targets, tokens);
}

}  // namespace
}  // namespace cadenza
