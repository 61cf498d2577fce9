// Real corpora end to end: ingest all of Nottingham and POP909, then check every stored piece round-trips
// tokens -> MIDI -> tokens, and that its notes agree with Python's mido reading of the source file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "core/tokenizer.h"
#include "storage/dataset.h"
#include "storage/ingest.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
constexpr int kGrid = 12;  // steps per quarter
constexpr int kMaxDurationSteps = 16 * kGrid;

struct CorpusCase {
  const char* name;
  const char* subdir;  // under ../shared/data
  int64_t min_files;
};

class CorpusTest : public ::testing::TestWithParam<CorpusCase> {
 protected:
  void SetUp() override {
    input_ = fs::path(CADENZA_SHARED_DATA) / GetParam().subdir;
    if (!fs::is_directory(input_)) GTEST_SKIP() << input_ << " is absent: real-corpus test skipped";
    work_ = fs::temp_directory_path() / ("cadenza_corpus_" + std::to_string(::getpid()) + "_" + GetParam().name);
    fs::remove_all(work_);
    fs::create_directories(work_);
  }
  void TearDown() override {
    if (!work_.empty()) fs::remove_all(work_);
  }
  fs::path input_, work_;
};

// (instrument, pitch, onset step) -> (duration steps, velocity) of a decoded piece.
using NoteKey = std::tuple<int, int, int64_t>;
std::map<NoteKey, std::pair<int64_t, int>> DecodedNotes(const Score& score) {
  std::map<NoteKey, std::pair<int64_t, int>> out;
  const int64_t ticks_per_step = score.ticks_per_quarter / kGrid;
  for (const Note& n : score.notes) {
    const int inst = n.drum ? 128 : n.program;
    out[{inst, n.pitch, n.start / ticks_per_step}] = {(n.end - n.start) / ticks_per_step, n.velocity};
  }
  return out;
}

TEST_P(CorpusTest, IngestsEveryFileRoundTripsAndAgreesWithMido) {
  IngestOptions o;
  o.input_dir = input_.string();
  o.out_dir = (work_ / "dataset").string();
  o.shards = 4;
  o.jobs = 2;
  o.progress = false;
  // Durations are compared with mido's note pairing below, which knows no pedal: ingest without it here (the
  // pedal has its own tests in performance_midi_test.cc; the ingest bench checks it against the Python reference).
  o.pedal = SustainPedal::kIgnore;
  IngestReport report;
  const Status s = Ingest(o, &report);
  ASSERT_TRUE(s.ok()) << s.message();
  std::printf("%s: %lld files, %lld pieces, %lld duplicates, %lld skipped, %lld notes, %.1f s\n", GetParam().name,
              (long long)report.files_found, (long long)report.pieces, (long long)report.duplicates,
              (long long)report.skipped.size(), (long long)report.notes, report.wall_seconds);
  EXPECT_GE(report.files_found, GetParam().min_files);
  for (const SkippedFile& f : report.skipped) ADD_FAILURE() << "skipped " << f.path << ": " << f.reason;
  EXPECT_EQ(report.pieces + report.duplicates, report.files_found);

  StatusOr<std::unique_ptr<Dataset>> ds = Dataset::Open(o.out_dir, /*verify_checksums=*/true);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  const Manifest& m = (*ds)->manifest();
  ASSERT_EQ(static_cast<int64_t>(m.pieces.size()), report.pieces);

  // Tempo is kept in time: the playing time from the tokens within the tempo bins' bound of every file's.
  EXPECT_LT(report.losses.max_time_drift, 0.005) << report.losses.max_time_drift_file;
  EXPECT_EQ(report.losses.skipped_meters, 0);
  EXPECT_EQ(report.losses.clamped_tempos, 0);

  // 1. Every stored piece: tokens -> MIDI -> tokens is the identity, and its stored bars match a re-segmentation.
  Tokenizer tok;
  std::map<std::string, Score> decoded_by_source;
  for (int shard = 0; shard < static_cast<int>(m.shards.size()); ++shard) {
    StatusOr<std::vector<Piece>> pieces = (*ds)->ReadShard(shard);
    ASSERT_TRUE(pieces.ok()) << pieces.status().message();
    const std::vector<int64_t> index = (*ds)->PiecesInShard(shard);
    ASSERT_EQ(index.size(), pieces->size());
    for (size_t i = 0; i < index.size(); ++i) {
      const Piece& p = (*pieces)[i];
      const std::string& source = m.pieces[index[i]].source;
      StatusOr<Score> score = tok.Decode(p.tokens);
      ASSERT_TRUE(score.ok()) << source << ": " << score.status().message();
      StatusOr<EncodedPiece> again = tok.Encode(*score);
      ASSERT_TRUE(again.ok()) << source;
      ASSERT_EQ(again->tokens, p.tokens) << source << ": tokens -> MIDI -> tokens differs";
      EXPECT_EQ(again->segmentation.BarTokenOffsets(), p.bar_offsets) << source;
      EXPECT_EQ(again->segmentation.beat_token_offsets, p.beat_offsets) << source;
      decoded_by_source[source] = std::move(*score);
    }
  }
  for (const DuplicateFile& d : report.duplicate_files) {
    ASSERT_TRUE(decoded_by_source.count(d.duplicate_of)) << d.duplicate_of;
    decoded_by_source[d.path] = decoded_by_source[d.duplicate_of];
  }

  // 2. Notes against mido, an independent parser: every onset within the grid error, durations and velocity
  //    bins equal except where quantisation legitimately changes them (merged, cut by a repeat, clipped).
  if (std::system("/usr/bin/python3 -c 'import mido' 2>/dev/null") != 0) {
    GTEST_SKIP() << "Debian's python3-mido is not installed: mido comparison skipped (scripts/install-deps.sh)";
  }
  const fs::path list = work_ / "files.txt", jsonl = work_ / "mido.jsonl";
  {
    std::ofstream f(list);
    for (const auto& [source, score] : decoded_by_source) f << (input_ / source).string() << "\n";
  }
  const std::string cmd = "xargs -d '\\n' -a " + list.string() + " /usr/bin/python3 " CADENZA_SOURCE_DIR
                          "/tests/tools/mido_notes.py --json > " + jsonl.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  std::ifstream in(jsonl);
  std::string line;
  int64_t files = 0, notes = 0, onset_misses = 0, duration_checked = 0, duration_mismatches = 0, velocity_mismatches = 0;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    const std::string source = fs::relative(j["file"].get<std::string>(), input_).string();
    ASSERT_TRUE(decoded_by_source.count(source)) << source;
    const auto decoded = DecodedNotes(decoded_by_source[source]);
    const double tpq = j["tpq"].get<double>();
    // Onset steps of every (instrument, pitch), to know which notes a later repeat cuts short.
    std::map<std::pair<int, int>, std::vector<int64_t>> onsets;
    for (const auto& n : j["notes"]) {
      const int inst = n[4].get<int>() == 9 ? 128 : n[5].get<int>();
      onsets[{inst, n[2].get<int>()}].push_back(std::llround(n[0].get<double>() * kGrid / tpq));
    }
    for (auto& [k, v] : onsets) std::sort(v.begin(), v.end());
    ++files;
    for (const auto& n : j["notes"]) {
      ++notes;
      const double start = n[0].get<double>() * kGrid / tpq, end = n[1].get<double>() * kGrid / tpq;
      const int pitch = n[2].get<int>(), velocity = n[3].get<int>();
      const int inst = n[4].get<int>() == 9 ? 128 : n[5].get<int>();
      // Within the grid error: the decoded onset is a grid step at most half a step from mido's onset.
      auto near = [&](double step) {
        auto f = decoded.find({inst, pitch, static_cast<int64_t>(step)});
        return (f != decoded.end() && std::abs(step - start) <= 0.5 + 1e-9) ? f : decoded.end();
      };
      // Prefer the documented rounding (half up); a tie may have gone either way only through a merge.
      auto it = near(std::floor(start + 0.5));
      if (it == decoded.end()) it = near(std::floor(start) == std::floor(start + 0.5) ? std::ceil(start) : std::floor(start));
      if (it == decoded.end()) {
        if (++onset_misses <= 5) ADD_FAILURE() << source << ": no decoded note near mido's pitch " << pitch << " at step " << start;
        continue;
      }
      const int64_t on = std::get<2>(it->first);
      const int64_t want = std::max<int64_t>(std::llround(end), on + 1) - on;
      const auto& same = onsets[{inst, pitch}];
      const auto next = std::upper_bound(same.begin(), same.end(), on);
      const bool shared_onset = std::count(same.begin(), same.end(), on) > 1;
      const bool cut = next != same.end() && *next < on + want;
      if (shared_onset || cut || want > kMaxDurationSteps) continue;
      ++duration_checked;
      if (std::abs(it->second.first - want) > 1) {
        if (++duration_mismatches <= 5) ADD_FAILURE() << source << ": pitch " << pitch << " at step " << on
                                                       << " lasts " << it->second.first << " steps, mido says " << want;
      }
      if ((it->second.second - 1) / 4 != (velocity - 1) / 4 && ++velocity_mismatches <= 5) {
        ADD_FAILURE() << source << ": pitch " << pitch << " at step " << on << " velocity " << it->second.second
                      << ", mido says " << velocity;
      }
    }
  }
  std::printf("%s vs mido: %lld files, %lld notes, %lld onset misses, %lld/%lld durations off, %lld velocity bins off\n",
              GetParam().name, (long long)files, (long long)notes, (long long)onset_misses,
              (long long)duration_mismatches, (long long)duration_checked, (long long)velocity_mismatches);
  EXPECT_EQ(files, report.files_found);
  EXPECT_GT(notes, 0);
  EXPECT_EQ(onset_misses, 0);
  EXPECT_EQ(duration_mismatches, 0);
  EXPECT_EQ(velocity_mismatches, 0);
  EXPECT_GT(duration_checked, notes / 2);
}

INSTANTIATE_TEST_SUITE_P(SharedData, CorpusTest,
                         ::testing::Values(CorpusCase{"nottingham", "nottingham/MIDI", 1000},
                                           CorpusCase{"pop909", "pop909", 909}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cadenza
