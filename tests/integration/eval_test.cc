// `cadenza evaluate` end to end: synthetic tunes against their own dataset, and Nottingham files against its test split.
#include <gtest/gtest.h>

#include "tests/support/shell.h"
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace {

using cadenza::Shell;
using cadenza::ShellRun;

namespace fs = std::filesystem;
using nlohmann::json;

using CliRun = ShellRun;
using cadenza::Cadenza;

json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

bool IsPng(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in && std::string(sig + 1, 3) == "PNG" && static_cast<unsigned char>(sig[0]) == 0x89;
}

// A Standard MIDI File with one track and no notes.
void WriteEmptyMidi(const fs::path& path) {
  const unsigned char bytes[] = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 1, 0xE0,
                                 'M', 'T', 'r', 'k', 0, 0, 0, 4, 0, 0xFF, 0x2F, 0};
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes), sizeof bytes);
}

class EvalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_eval_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(EvalCliTest, HelpExplainsEveryOption) {
  CliRun help = Cadenza("evaluate --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* opt : {"--reference", "--split", "--out", "--ssm-png", "--segment", "--jobs", "--threshold", "Exit code"}) {
    EXPECT_NE(help.output.find(opt), std::string::npos) << opt;
  }
}

TEST_F(EvalCliTest, SyntheticSetAgainstItsOwnDataset) {
  const std::string midi = (dir_ / "midi").string(), ds = (dir_ / "ds").string();
  ASSERT_EQ(Cadenza("synth --out " + midi + " --count 24 --seed 3").exit_code, 0);
  ASSERT_EQ(Cadenza("ingest " + midi + " --out " + ds + " --val 0 --test 0.5 --quiet").exit_code, 0);
  const fs::path report = dir_ / "report.json";
  CliRun run = Cadenza("evaluate " + midi + " --reference " + ds + " --split test --out " + report.string() +
                       " --segment beat -j 2 -q");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json r = ReadJson(report);
  EXPECT_EQ(r["options"]["segment"], "beat");
  ASSERT_EQ(r["pieces"].size(), 24u);
  EXPECT_TRUE(r["skipped"].empty());
  for (const json& p : r["pieces"]) {
    EXPECT_EQ(p["segments"].get<int>() > p["bars"].get<int>(), true) << "beat segments outnumber bars";
    EXPECT_GE(p["structure"]["repetition"].get<double>(), 0.0);
  }
  // Synthetic tunes repeat their sections: clearly structured and in key; their triplets are on the grid of their
  // beat (divided in three since issue 16).
  EXPECT_GT(r["set"]["structureness"]["mean"].get<double>(), 0.2);
  EXPECT_GT(r["set"]["scale_consistency"]["mean"].get<double>(), 0.8);
  EXPECT_GT(r["set"]["on_grid_rate"]["mean"].get<double>(), 0.5);
  EXPECT_LE(r["set"]["on_grid_rate"]["mean"].get<double>(), 1.0);
  const int ref = r["reference"]["pieces"].get<int>();
  EXPECT_GT(ref, 2);
  EXPECT_LT(ref, 24);
  // The reference is a subset of the evaluated set: each side's own spread is much alike.
  // mgeval's overlap and kl are null where a set's distances are all equal (no density in scipy either).
  for (const auto& [feature, c] : r["reference"]["comparison"].items()) {
    for (const char* key : {"overlap", "overlap_tails"}) {
      if (c["reference_vs_inter"][key].is_null()) continue;
      const double oa = c["reference_vs_inter"][key].get<double>();
      EXPECT_GE(oa, 0.0) << feature << " " << key;
      EXPECT_LE(oa, 1.0) << feature << " " << key;
    }
    for (const char* key : {"kl", "kl_tails"}) {
      if (!c["reference_vs_inter"][key].is_null()) {
        EXPECT_GE(c["reference_vs_inter"][key].get<double>(), 0.0) << feature;
      }
    }
  }
}

TEST_F(EvalCliTest, BadInputIsNamedAndTheRestGoesOn) {
  const std::string midi = (dir_ / "midi").string();
  ASSERT_EQ(Cadenza("synth --out " + midi + " --count 3 --seed 1").exit_code, 0);
  const fs::path bad = dir_ / "bad.mid", empty = dir_ / "empty.mid";
  std::ofstream(bad) << "this is not midi";
  WriteEmptyMidi(empty);
  const fs::path report = dir_ / "r.json";
  CliRun run = Cadenza("evaluate " + midi + " " + bad.string() + " " + empty.string() + " " + (dir_ / "missing.mid").string() +
                       " --out " + report.string() + " --ssm-png " + (dir_ / "png").string() + " -q");
  EXPECT_EQ(run.exit_code, 3) << run.output;
  EXPECT_NE(run.output.find(bad.string()), std::string::npos) << run.output;
  const json r = ReadJson(report);
  EXPECT_EQ(r["pieces"].size(), 3u);
  ASSERT_EQ(r["skipped"].size(), 3u);
  std::set<std::string> reasons;
  for (const json& s : r["skipped"]) reasons.insert(s["input"].get<std::string>() + " | " + s["reason"].get<std::string>());
  std::string all;
  for (const auto& s : reasons) all += s + "\n";
  EXPECT_NE(all.find("expected 'MThd'"), std::string::npos) << all;
  EXPECT_NE(all.find("no notes"), std::string::npos) << all;
  EXPECT_NE(all.find("no such file"), std::string::npos) << all;
  for (const json& p : r["pieces"]) EXPECT_TRUE(IsPng(p["ssm_png"].get<std::string>())) << p["ssm_png"];

  CliRun split = Cadenza("evaluate " + midi + " --reference " + (dir_ / "nods").string() + " --split bogus --out " + report.string());
  EXPECT_EQ(split.exit_code, 1);
  EXPECT_NE(split.output.find("bogus"), std::string::npos) << split.output;
  CliRun nods = Cadenza("evaluate " + midi + " --reference " + (dir_ / "nods").string() + " --out " + report.string());
  EXPECT_EQ(nods.exit_code, 1);
  EXPECT_NE(nods.output.find("nods"), std::string::npos) << nods.output;
  fs::create_directories(dir_ / "nothing");
  CliRun none = Cadenza("evaluate " + (dir_ / "nothing").string() + " --out " + report.string());
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no MIDI files"), std::string::npos) << none.output;
  CliRun all_bad = Cadenza("evaluate " + bad.string() + " --out " + (dir_ / "bad.json").string() + " -q");
  EXPECT_EQ(all_bad.exit_code, 1) << all_bad.output;
  EXPECT_TRUE(fs::exists(dir_ / "bad.json")) << "the report lists what was skipped even when nothing was evaluated";
}

TEST_F(EvalCliTest, NottinghamAgainstItsTestSplit) {
  const fs::path input = fs::path(CADENZA_SHARED_DATA) / "nottingham" / "MIDI";
  if (!fs::is_directory(input)) GTEST_SKIP() << input << " is absent: Nottingham evaluation skipped";
  const std::string ds = (dir_ / "ds").string();
  CliRun ingest = Cadenza("ingest " + input.string() + " --out " + ds + " --jobs 2 --quiet");
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  // The test split's own source files, evaluated from MIDI, against the same split read from the dataset.
  const json manifest = ReadJson(fs::path(ds) / "manifest.json");
  std::string files;
  int test_pieces = 0;
  for (const json& p : manifest["pieces"]) {
    if (p["split"] != "test") continue;
    ++test_pieces;
    files += " " + (input / p["source"].get<std::string>()).string();
  }
  ASSERT_GT(test_pieces, 20);
  const fs::path report = dir_ / "report.json", png = dir_ / "png";
  CliRun run = Cadenza("evaluate" + files + " --reference " + ds + " --split test --out " + report.string() +
                       " --ssm-png " + png.string() + " -j 2 -q");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json r = ReadJson(report);
  ASSERT_EQ(r["pieces"].size(), static_cast<size_t>(test_pieces));
  EXPECT_EQ(r["reference"]["pieces"].get<int>(), test_pieces);
  EXPECT_EQ(r["reference"]["split"], "test");
  // Folk tunes: diatonic, on the sixteenth grid, hardly syncopated, with repeated sections.
  const json& set = r["set"];
  EXPECT_GT(set["scale_consistency"]["mean"].get<double>(), 0.9);
  EXPECT_GT(set["on_grid_rate"]["mean"].get<double>(), 0.95);
  EXPECT_LT(set["syncopation"]["mean"].get<double>(), 1.0);
  EXPECT_GT(set["pitch_class_entropy"]["mean"].get<double>(), 1.5);
  EXPECT_LT(set["pitch_class_entropy"]["mean"].get<double>(), std::log2(12.0));
  EXPECT_GT(set["structureness"]["mean"].get<double>(), 0.3);
  EXPECT_GT(set["repetition"]["mean"].get<double>(), 0.05);
  // The same pieces by two routes (MIDI file, dataset tokens) give the same metrics, so the same distributions.
  for (const auto& [feature, stats] : set.items()) {
    if (!stats.contains("count")) continue;
    EXPECT_NEAR(stats["mean"].get<double>(), r["reference"]["set"][feature]["mean"].get<double>(), 1e-9) << feature;
  }
  // A set against itself: the tail-inclusive overlap is 1; mgeval's leaves the tails beyond [min, max] out.
  for (const auto& [feature, c] : r["reference"]["comparison"].items()) {
    EXPECT_NEAR(c["generated_vs_reference"]["overlap_tails"].get<double>(), 1.0, 1e-3) << feature;
    EXPECT_GT(c["reference_vs_inter"]["overlap_tails"].get<double>(), 0.8) << feature;
    if (!c["generated_vs_reference"]["overlap"].is_null()) {
      EXPECT_LE(c["generated_vs_reference"]["overlap"].get<double>(), 1.0) << feature;
      EXPECT_GT(c["generated_vs_reference"]["overlap"].get<double>(), 0.5) << feature;
    }
  }
  int pngs = 0;
  for (const auto& e : fs::directory_iterator(png)) pngs += IsPng(e.path());
  EXPECT_EQ(pngs, test_pieces);
}

}  // namespace
