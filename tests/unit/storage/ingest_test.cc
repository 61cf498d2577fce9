// Tests of `cadenza ingest`: skipped and duplicate files, reports, option checks, overwrite, resuming.
#include "storage/ingest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file_util.h"
#include "core/midi.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"
#include "storage/dataset.h"
#include "storage/hdf5_shard.h"
#include "tests/unit/storage/storage_test_util.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

std::set<std::string> FilesIn(const std::string& dir) {
  std::set<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

class IngestTest : public ::testing::Test {
 protected:
  // 6 good tunes (nested folders, mixed-case extensions), a corrupt file, a duplicate, a file with no
  // notes, and a text file that is not looked at.
  void SetUp() override {
    input_ = dir_ / "midi";
    for (int i = 0; i < 6; ++i) {
      const std::string name = i < 3 ? "a/tune" + std::to_string(i) + ".mid"
                                     : "b/c/Tune" + std::to_string(i) + (i == 4 ? ".MID" : ".midi");
      ASSERT_EQ(testing::WriteTune(testing::MakeTune(i, 4 + i), input_ + "/" + name), "");
    }
    testing::WriteBytes(input_ + "/b/broken.mid", "MThd\x00\x00\x00\x06 this is not a MIDI file");
    fs::copy_file(input_ + "/a/tune1.mid", input_ + "/b/zz_copy_of_tune1.mid");
    Score silent;
    silent.tracks = {Track{"empty"}};
    silent.tempos = {TempoChange{0, 500000}};
    silent.end_tick = 1920;
    ASSERT_EQ(testing::WriteTune(silent, input_ + "/silent.mid"), "");
    testing::WriteBytes(input_ + "/readme.txt", "not music");
  }

  IngestOptions Options(const std::string& out_name, int shards = 3) {
    IngestOptions o;
    o.input_dir = input_;
    o.out_dir = dir_ / out_name;
    o.shards = shards;
    o.val_fraction = 0.2;
    o.test_fraction = 0.2;
    o.jobs = 2;
    o.progress = false;
    return o;
  }

  testing::TempDir dir_;
  std::string input_;
};

TEST_F(IngestTest, IngestsGoodFilesAndReportsSkippedAndDuplicates) {
  IngestReport report;
  Status s = Ingest(Options("ds"), &report);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(report.files_found, 9);
  EXPECT_EQ(report.pieces, 6);
  EXPECT_EQ(report.duplicates, 1);
  ASSERT_EQ(report.duplicate_files.size(), 1u);
  EXPECT_EQ(report.duplicate_files[0].path, "b/zz_copy_of_tune1.mid");
  EXPECT_EQ(report.duplicate_files[0].duplicate_of, "a/tune1.mid");
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_EQ(report.skipped[0].path, "b/broken.mid");
  EXPECT_FALSE(report.skipped[0].reason.empty());
  EXPECT_EQ(report.skipped[1].path, "silent.mid");
  EXPECT_EQ(report.skipped[1].reason, "no notes");
  EXPECT_EQ(report.split_counts[0] + report.split_counts[1] + report.split_counts[2], 6);
  EXPECT_GT(report.notes, 0);
  EXPECT_GT(report.tokens, 0);
  EXPECT_GT(report.seconds_of_music, 0);
  EXPECT_EQ(report.shards_reused, 0);

  const std::string out = dir_ / "ds";
  EXPECT_FALSE(fs::exists(out + ".partial"));
  EXPECT_EQ(FilesIn(out), (std::set<std::string>{"manifest.json", "ingest_report.json", "shard-00000.h5",
                                                 "shard-00001.h5", "shard-00002.h5"}));

  // The report on disk lists every skipped file with its reason.
  nlohmann::json j = nlohmann::json::parse(testing::ReadText(out + "/ingest_report.json"));
  ASSERT_EQ(j["skipped"].size(), 2u);
  EXPECT_EQ(j["skipped"][0]["path"], "b/broken.mid");
  EXPECT_EQ(j["skipped"][0]["reason"], report.skipped[0].reason);
  EXPECT_EQ(j["skipped"][1]["reason"], "no notes");
  EXPECT_EQ(j["duplicates"], 1);
  EXPECT_EQ(j["pieces"], 6);

  // The manifest has the pieces once each, with their metadata.
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(out, /*verify_checksums=*/true);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  const Manifest& m = (*ds)->manifest();
  ASSERT_EQ(m.pieces.size(), 6u);
  std::set<std::string> sources;
  for (const PieceMeta& p : m.pieces) {
    sources.insert(p.source);
    EXPECT_EQ(p.time_signatures, (std::vector<std::string>{"4/4"}));
    EXPECT_GT(p.seconds, 0);
    EXPECT_GT(p.bars, 0);
    EXPECT_GT(p.notes, 0);
    EXPECT_FALSE(p.key.empty());
    EXPECT_GT(p.tempo_bpm, 100);
    EXPECT_LE(p.tempo_bpm, 120);
  }
  EXPECT_EQ(sources, (std::set<std::string>{"a/tune0.mid", "a/tune1.mid", "a/tune2.mid", "b/c/Tune3.midi",
                                            "b/c/Tune4.MID", "b/c/Tune5.midi"}));
  int64_t shard_pieces = 0;
  for (const ShardInfo& sh : m.shards) shard_pieces += sh.pieces;
  EXPECT_EQ(shard_pieces, 6);

  const std::string summary = report.Summary();
  EXPECT_NE(summary.find("6 pieces from 9 MIDI files"), std::string::npos) << summary;
  EXPECT_NE(summary.find("b/broken.mid"), std::string::npos) << summary;
  EXPECT_NE(summary.find("hours"), std::string::npos) << summary;
}

TEST_F(IngestTest, SameInputGivesSameDatasetWhateverTheThreadCount) {
  IngestOptions a = Options("one");
  a.jobs = 1;
  IngestOptions b = Options("four");
  b.jobs = 4;
  IngestReport ra, rb;
  ASSERT_TRUE(Ingest(a, &ra).ok());
  ASSERT_TRUE(Ingest(b, &rb).ok());
  StatusOr<Manifest> ma = Manifest::Load(a.out_dir + "/manifest.json");
  StatusOr<Manifest> mb = Manifest::Load(b.out_dir + "/manifest.json");
  ASSERT_TRUE(ma.ok() && mb.ok());
  ASSERT_EQ(ma->pieces.size(), mb->pieces.size());
  for (size_t i = 0; i < ma->pieces.size(); ++i) {
    EXPECT_EQ(ma->pieces[i].id, mb->pieces[i].id);
    EXPECT_EQ(ma->pieces[i].split, mb->pieces[i].split);
    EXPECT_EQ(ma->pieces[i].shard, mb->pieces[i].shard);
  }
  for (size_t s = 0; s < ma->shards.size(); ++s) EXPECT_EQ(ma->shards[s].sha256, mb->shards[s].sha256);
}

TEST_F(IngestTest, ExistingOutputIsAnErrorUnlessOverwrite) {
  IngestReport report;
  IngestOptions o = Options("ds");
  fs::create_directories(o.out_dir);
  testing::WriteBytes(o.out_dir + "/old-marker", "x");
  Status s = Ingest(o, &report);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), o.out_dir + ": already exists; pass --overwrite to replace it");
  EXPECT_TRUE(fs::exists(o.out_dir + "/old-marker"));

  o.overwrite = true;
  s = Ingest(o, &report);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(fs::exists(o.out_dir + "/old-marker"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/manifest.json"));
  // Nothing is left beside the dataset: no .partial, no moved-aside old copy.
  EXPECT_EQ(FilesIn(dir_.path()), (std::set<std::string>{"midi", "ds"}));
}

TEST_F(IngestTest, OptionsAreValidatedNamingTheOption) {
  IngestReport report;
  IngestOptions o = Options("ds");
  o.shards = 0;
  EXPECT_EQ(Ingest(o, &report).message(), "--shards must be >= 1, got 0");
  o = Options("ds");
  o.jobs = 0;
  EXPECT_EQ(Ingest(o, &report).message(), "--jobs must be >= 1, got 0");
  o = Options("ds");
  o.val_fraction = -0.1;
  EXPECT_EQ(Ingest(o, &report).message().rfind("--val must be in [0, 1)", 0), 0u);
  o = Options("ds");
  o.val_fraction = 0.6;
  o.test_fraction = 0.5;
  EXPECT_EQ(Ingest(o, &report).message().rfind("--val + --test must be < 1", 0), 0u);
  o = Options("ds");
  o.input_dir = dir_ / "nowhere";
  EXPECT_EQ(Ingest(o, &report).message(), dir_ / "nowhere" + ": input folder does not exist");
  o = Options("ds");
  o.input_dir = dir_ / "empty";
  fs::create_directories(o.input_dir);
  EXPECT_EQ(Ingest(o, &report).message(), o.input_dir + ": no .mid or .midi files found");
  EXPECT_FALSE(fs::exists(dir_ / "ds"));
}

TEST_F(IngestTest, InterruptedIngestResumesAndReusesFinishedShards) {
  IngestOptions o = Options("ds", 3);
  o.stop_after_shards = 1;
  IngestReport report;
  ASSERT_FALSE(Ingest(o, &report).ok());
  const std::string partial = o.out_dir + ".partial";
  ASSERT_TRUE(fs::exists(partial + "/shard-00000.h5"));
  ASSERT_TRUE(fs::exists(partial + "/shard-00000.h5.done"));
  EXPECT_FALSE(fs::exists(o.out_dir));
  // A crash in the middle of the next shard leaves a half-written temporary file.
  testing::WriteBytes(partial + "/shard-00001.h5.tmp", std::string("\x89HDF\r\n\x1a\n", 8) + "half written");

  o.stop_after_shards = -1;
  Status s = Ingest(o, &report);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(report.shards_reused, 1);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(FilesIn(o.out_dir), (std::set<std::string>{"manifest.json", "ingest_report.json", "shard-00000.h5",
                                                       "shard-00001.h5", "shard-00002.h5"}));
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(o.out_dir, /*verify_checksums=*/true);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ((*ds)->num_pieces(), 6);

  // The resumed dataset is the same as one written in one go.
  IngestReport fresh_report;
  ASSERT_TRUE(Ingest(Options("fresh", 3), &fresh_report).ok());
  StatusOr<Manifest> fresh = Manifest::Load(dir_ / "fresh/manifest.json");
  ASSERT_TRUE(fresh.ok());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(fresh->shards[i].sha256, (*ds)->manifest().shards[i].sha256);
}

TEST_F(IngestTest, FinishedShardThatNoLongerVerifiesIsRewritten) {
  IngestOptions o = Options("ds", 2);
  o.stop_after_shards = 1;
  IngestReport report;
  ASSERT_FALSE(Ingest(o, &report).ok());
  const std::string shard = o.out_dir + ".partial/shard-00000.h5";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(shard) - 10));
    f.write("XXXX", 4);
  }
  o.stop_after_shards = -1;
  ASSERT_TRUE(Ingest(o, &report).ok());
  EXPECT_EQ(report.shards_reused, 0);
  EXPECT_TRUE(Dataset::Open(o.out_dir, /*verify_checksums=*/true).ok());
}

TEST_F(IngestTest, PartialFolderOfOtherInputsIsNotReused) {
  IngestOptions o = Options("ds", 2);
  o.stop_after_shards = 1;
  IngestReport report;
  ASSERT_FALSE(Ingest(o, &report).ok());
  // Another tune changes which pieces go to shard 0.
  ASSERT_EQ(testing::WriteTune(testing::MakeTune(50, 5), input_ + "/new.mid"), "");
  o.stop_after_shards = -1;
  ASSERT_TRUE(Ingest(o, &report).ok());
  EXPECT_EQ(report.shards_reused, 0);
  EXPECT_EQ(report.pieces, 7);
}

// A performance-style file: pedal, off-grid onsets, a duplicate, an overlap, a clipped note, a clamped tempo and a
// meter the 12 grid cannot hold. Every loss reaches ingest_report.json, per file and in total.
Score PerformanceTune() {
  Score s;
  s.ticks_per_quarter = 480;
  s.tracks = {Track{"piano"}};
  s.time_signatures = {{0, 4, 4}, {1920, 11, 32}, {1920 + 1320, 4, 4}};
  s.tempos = {{0, 12000000}};  // 5 bpm
  auto note = [](int64_t on, int64_t off, int pitch) {
    Note n;
    n.start = on;
    n.end = off;
    n.pitch = static_cast<uint8_t>(pitch);
    n.velocity = 80;
    return n;
  };
  s.notes = {note(0, 480, 60), note(10, 480, 60), note(480, 1440, 62), note(960, 1200, 62), note(1440, 1440 + 20 * 480, 64),
             note(3240, 3480, 65), note(3480, 3720, 67)};
  s.sustain = {{3240 + 120, 0, true}, {3240 + 960, 0, false}};
  s.Sort();
  return s;
}

TEST_F(IngestTest, EveryLossReachesTheReport) {
  ASSERT_EQ(testing::WriteTune(PerformanceTune(), input_ + "/performance.mid"), "");
  IngestReport report;
  Status s = Ingest(Options("ds"), &report);
  ASSERT_TRUE(s.ok()) << s.message();
  const IngestLosses& l = report.losses;
  EXPECT_EQ(l.merged_duplicates, 1);
  EXPECT_EQ(l.cut_overlaps, 1);
  EXPECT_EQ(l.clipped_durations, 1);
  EXPECT_EQ(l.clamped_tempos, 1);
  EXPECT_EQ(l.skipped_meters, 1);
  EXPECT_EQ(l.sustain_presses, 1);
  EXPECT_EQ(l.sustained_notes, 2);
  EXPECT_GE(l.off_grid_onsets, 1);
  StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(dir_ / "ds/ingest_report.json");
  ASSERT_TRUE(bytes.ok());
  const nlohmann::json j = nlohmann::json::parse(bytes->begin(), bytes->end());
  EXPECT_EQ(j["grid_per_quarter"], 12);
  for (const char* key : {"off_grid_onsets", "clipped_durations", "merged_duplicates", "cut_overlaps", "clamped_tempos",
                          "skipped_meters", "moved_meters", "sustain_presses_applied", "sustained_notes", "max_time_drift"}) {
    EXPECT_TRUE(j["losses"].contains(key)) << key;
  }
  EXPECT_EQ(j["losses"]["skipped_meters"], 1);
  bool listed = false;
  for (const nlohmann::json& p : j["pieces_with_losses"]) {
    if (p["path"] != "performance.mid") continue;
    listed = true;
    EXPECT_EQ(p["sustained_notes"], 2);
    ASSERT_TRUE(p.contains("skipped_meter_reasons"));
    EXPECT_NE(p["skipped_meter_reasons"][0].get<std::string>().find("11/32"), std::string::npos);
  }
  EXPECT_TRUE(listed);
  // The manifest lists the meters the tokens hold, not the skipped one.
  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(dir_ / "ds");
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  for (const PieceMeta& p : (*ds)->manifest().pieces) {
    if (p.source != "performance.mid") continue;
    for (const std::string& m : p.time_signatures) EXPECT_NE(m, "11/32");
  }
}

TEST_F(IngestTest, AnotherGridMakesAnotherVocabularyRefusedByName) {
  IngestOptions o = Options("ds24");
  o.grid = 24;
  IngestReport report;
  Status s = Ingest(o, &report);
  ASSERT_TRUE(s.ok()) << s.message();
  StatusOr<std::unique_ptr<Dataset>> refused = Dataset::Open(dir_ / "ds24");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("cadenza-remi-beat-g24"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("cadenza-remi-beat-g12"), std::string::npos) << refused.status().message();
  StatusOr<std::unique_ptr<Dataset>> any = Dataset::Open(dir_ / "ds24", true, /*any_grid=*/true);
  ASSERT_TRUE(any.ok()) << any.status().message();
  EXPECT_EQ((*any)->vocabulary().grid(), 24);
  StatusOr<Piece> p = (*any)->ReadPiece(0);
  ASSERT_TRUE(p.ok()) << p.status().message();
  o.grid = 16;
  o.out_dir = dir_ / "ds16";
  s = Ingest(o, &report);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--grid"), std::string::npos);
}

TEST_F(IngestTest, PedalTokensMakeAnotherVocabularyRefusedByNameAndCounted) {
  ASSERT_EQ(testing::WriteTune(PerformanceTune(), input_ + "/performance.mid"), "");
  IngestReport plain_report;
  Status s = Ingest(Options("ds"), &plain_report);
  ASSERT_TRUE(s.ok()) << s.message();
  IngestOptions o = Options("dsp");
  o.pedal = SustainPedal::kTokens;
  IngestReport report;
  s = Ingest(o, &report);
  ASSERT_TRUE(s.ok()) << s.message();
  // The pedal's press (tick 3360, step 84) and release (tick 4200, step 105) became two tokens; no note lengthened.
  EXPECT_EQ(report.losses.pedal_tokens, 2);
  EXPECT_EQ(report.losses.lost_pedal_presses, 0);
  EXPECT_EQ(report.losses.sustain_presses, 0);
  EXPECT_EQ(report.losses.sustained_notes, 0);
  EXPECT_EQ(plain_report.losses.pedal_tokens, 0);
  EXPECT_EQ(plain_report.losses.sustained_notes, 2);
  StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(dir_ / "dsp/ingest_report.json");
  ASSERT_TRUE(bytes.ok());
  const nlohmann::json j = nlohmann::json::parse(bytes->begin(), bytes->end());
  EXPECT_EQ(j["pedal"], "tokens");
  EXPECT_EQ(j["sustain_pedal"], "kept as Pedal_Down/Pedal_Up tokens");
  EXPECT_EQ(j["losses"]["pedal_tokens"], 2);
  EXPECT_EQ(j["losses"]["pedal_presses_lost"], 0);
  bool listed = false;
  for (const nlohmann::json& p : j["pieces_with_losses"]) {
    if (p["path"] != "performance.mid") continue;
    listed = true;
    EXPECT_EQ(p["pedal_tokens"], 2);
    EXPECT_FALSE(p.contains("sustained_notes"));
  }
  EXPECT_TRUE(listed);

  // The default dataset keeps the default vocabulary (what out/pop909-v2 records); the pedal one has its own.
  StatusOr<std::unique_ptr<Dataset>> plain = Dataset::Open(dir_ / "ds");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ((*plain)->manifest().vocab_name, "cadenza-remi-beat-g12");
  EXPECT_EQ((*plain)->manifest().vocab_hash, "28d31bd5ac13a3d2");
  // A consumer of the default vocabulary (training, scoring) refuses the pedal dataset, naming both vocabularies.
  StatusOr<std::unique_ptr<Dataset>> refused = Dataset::Open(dir_ / "dsp");
  ASSERT_FALSE(refused.ok());
  const std::string& why = refused.status().message();
  EXPECT_NE(why.find("dataset vocabulary cadenza-remi-beat-g12-pedal v2"), std::string::npos) << why;
  EXPECT_NE(why.find("differs from cadenza-remi-beat-g12 v2"), std::string::npos) << why;
  EXPECT_NE(why.find("--pedal apply or ignore"), std::string::npos) << why;
  // inspect and detokenize open it with its own vocabulary, and its tokens decode to the pedal as CC 64.
  StatusOr<std::unique_ptr<Dataset>> any = Dataset::Open(dir_ / "dsp", true, /*any_grid=*/true);
  ASSERT_TRUE(any.ok()) << any.status().message();
  const Vocabulary& v = (*any)->vocabulary();
  EXPECT_EQ(v.name(), "cadenza-remi-beat-g12-pedal");
  EXPECT_EQ((*any)->manifest().vocab_hash, v.HashHex());
  EXPECT_NE(v.HashHex(), "28d31bd5ac13a3d2");
  bool found = false;
  std::set<std::string> ids_plain, ids_pedal;
  for (const PieceMeta& p : (*plain)->manifest().pieces) {
    if (p.source != "performance.mid") ids_plain.insert(p.id);
  }
  for (int64_t i = 0; i < (*any)->num_pieces(); ++i) {
    const PieceMeta& meta = (*any)->manifest().pieces[i];
    if (meta.source != "performance.mid") {
      ids_pedal.insert(meta.id);
      continue;
    }
    found = true;
    StatusOr<Piece> p = (*any)->ReadPiece(i);
    ASSERT_TRUE(p.ok()) << p.status().message();
    auto score = Tokenizer(TokenizerOptions::For(v)).Decode(p->tokens);
    ASSERT_TRUE(score.ok()) << score.status().message();
    ASSERT_EQ(score->sustain.size(), 2u);
    EXPECT_EQ(score->sustain[0].tick, 84 * 40);
    EXPECT_EQ(score->sustain[1].tick, 105 * 40);
  }
  EXPECT_TRUE(found);
  // Files without a pedal have the same tokens (so the same ids) in both datasets.
  EXPECT_EQ(ids_plain, ids_pedal);
  EXPECT_EQ(ids_plain.size(), 6u);
}

}  // namespace
}  // namespace cadenza
