// Training killed at random moments (SIGKILL: no handler, no flush) and resumed from its checkpoint must end with
// the metrics of a run that was never interrupted: every (step, tag) once, in order, with the same values, in the
// CSV, the JSON lines and the TensorBoard events. Also: one trainer per run folder, a folder without a checkpoint
// is never appended to, and a damaged checkpoint is refused by name.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "core/file_util.h"
#include "core/metrics_log.h"
#include "core/model/checkpoint.h"
#include "core/model/trainer.h"
#include "core/vocabulary.h"
#include "tests/unit/model/memory_windows.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The only metric that depends on the wall clock: excluded from the comparison (still checked for exactly-once).
bool Timed(const std::string& tag) { return tag == "train/tokens_per_second"; }

struct Row {
  int64_t step;
  std::string tag;
  std::string value;  // as written
  bool operator==(const Row& o) const { return step == o.step && tag == o.tag && value == o.value; }
};
std::ostream& operator<<(std::ostream& os, const Row& r) { return os << r.step << "," << r.tag << "," << r.value; }

// The rows of metrics.csv (header checked); a line that is not a whole row fails the test.
std::vector<Row> CsvRows(const fs::path& file) {
  std::istringstream in(ReadAll(file));
  std::string line;
  std::vector<Row> rows;
  EXPECT_TRUE(std::getline(in, line) && line == "step,tag,value") << file << ": header '" << line << "'";
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.rfind(',');
    EXPECT_TRUE(a != std::string::npos && b > a && line.find(',', a + 1) == b) << file << ": spliced row '" << line << "'";
    if (a == std::string::npos || b <= a) continue;
    rows.push_back({std::stoll(line.substr(0, a)), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return rows;
}

std::vector<Row> JsonlRows(const fs::path& file) {
  std::istringstream in(ReadAll(file));
  std::string line;
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    long long step = 0;
    char tag[128] = {0}, value[64] = {0};
    const bool whole = std::sscanf(line.c_str(), "{\"step\": %lld, \"tag\": \"%127[^\"]\", \"value\": %63[^}]}", &step, tag, value) == 3 &&
                       line.back() == '}';
    EXPECT_TRUE(whole) << file << ": not a whole row '" << line << "'";
    if (whole) rows.push_back({step, tag, value});
  }
  return rows;
}

// Scalar events of every event file in the folder, files in name order (as TensorBoard reads them), records in order.
uint64_t Varint(const std::string& s, size_t* pos) {
  uint64_t v = 0;
  for (int shift = 0; *pos < s.size(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(s[(*pos)++]);
    v |= uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}
// Field `want` (length-delimited) of a message, or "".
std::map<int, std::string> Fields(const std::string& msg, std::map<int, uint64_t>* ints = nullptr) {
  std::map<int, std::string> out;
  size_t pos = 0;
  while (pos < msg.size()) {
    const uint64_t key = Varint(msg, &pos);
    const int field = int(key >> 3);
    switch (key & 7) {
      case 0: {
        const uint64_t v = Varint(msg, &pos);
        if (ints) (*ints)[field] = v;
        break;
      }
      case 1: out[field] = msg.substr(pos, 8); pos += 8; break;
      case 5: out[field] = msg.substr(pos, 4); pos += 4; break;
      case 2: {
        const uint64_t n = Varint(msg, &pos);
        out[field] = msg.substr(pos, n);
        pos += n;
        break;
      }
      default: ADD_FAILURE() << "bad wire type"; return out;
    }
  }
  return out;
}
std::vector<Row> EventRows(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Row> rows;
  for (const fs::path& f : files) {
    const std::string data = ReadAll(f);
    size_t pos = 0;
    while (pos < data.size()) {
      uint64_t len;
      uint32_t len_crc, data_crc;
      if (pos + 12 > data.size()) {
        ADD_FAILURE() << f << ": torn record header at " << pos;
        break;
      }
      std::memcpy(&len, data.data() + pos, 8);
      std::memcpy(&len_crc, data.data() + pos + 8, 4);
      if (len_crc != MaskedCrc32c(&len, 8) || pos + 16 + len > data.size()) {
        ADD_FAILURE() << f << ": torn or damaged record at " << pos;
        break;
      }
      const std::string event = data.substr(pos + 12, len);
      std::memcpy(&data_crc, data.data() + pos + 12 + len, 4);
      EXPECT_EQ(data_crc, MaskedCrc32c(event.data(), event.size())) << f;
      pos += 16 + len;
      std::map<int, uint64_t> ints;
      const auto fields = Fields(event, &ints);
      if (!fields.count(5)) continue;  // file_version
      const auto value = Fields(Fields(fields.at(5)).at(1));
      float v;
      std::memcpy(&v, value.at(2).data(), 4);
      char text[32];
      std::snprintf(text, sizeof text, "%.9g", v);
      rows.push_back({int64_t(ints[2]), value.at(1), text});
    }
  }
  return rows;
}

// Every (step, tag) once, steps never decreasing; then the rows without the timed metric.
std::vector<Row> CheckedUntimed(const std::vector<Row>& rows, const std::string& what) {
  std::set<std::pair<int64_t, std::string>> seen;
  std::vector<Row> out;
  int64_t last = 0;
  for (const Row& r : rows) {
    EXPECT_TRUE(seen.insert({r.step, r.tag}).second) << what << ": (" << r.step << ", " << r.tag << ") appears twice";
    EXPECT_GE(r.step, last) << what << ": step " << r.step << " after step " << last;
    last = r.step;
    if (!Timed(r.tag)) out.push_back(r);
  }
  return out;
}

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_resume_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A Transformer small enough that a step takes milliseconds, with dropout (the checkpointed RNG matters),
  // validation and a checkpoint every 3 steps, and sample structure at each validation (its own random stream).
  ExperimentConfig Config(const std::string& run) {
    ExperimentConfig c;
    c.name = run;
    c.dataset = "memory";
    c.out = (dir_ / run).string();
    c.model.family = "transformer";
    c.model.vocab_size = Vocabulary::Get().size();
    c.model.d_model = 32;
    c.model.layers = 1;
    c.model.heads = 2;
    c.model.ff_dim = 64;
    c.model.max_len = 64;
    c.model.dropout = 0.1;
    c.train.seq_len = 32;
    c.train.batch_size = 4;
    c.train.steps = 60;
    c.train.lr = 3e-3;
    c.train.warmup_steps = 5;
    c.train.eval_every = 3;
    c.train.eval_windows = 4;
    c.train.threads = 1;
    return c;
  }
  TrainOptions Quiet(bool resume) {
    TrainOptions o;
    o.progress = false;
    o.resume = resume;
    return o;
  }
  fs::path dir_;
  MemoryWindows train_{4, 33, 1}, val_{2, 33, 99};
};

// 50 SIGKILLs at random moments (seeded; the seed is printed), each followed by a resume when a checkpoint exists
// (else a fresh start, as a coordinator retry does). Each attempt writes its rows out at a random threshold (every
// row, ~1 step, a few steps, the default 4 KiB, only at checkpoints), so kills find rows of steps after the last
// checkpoint on disk, torn rows and torn records, or none. When a run reaches its end before the next kill, its
// metrics are checked and it starts over, until 50 kills have landed. The child is a fork of this process (no exec):
// the whole test takes about 10-20 s on 2 cores.
TEST_F(ResumeTest, KilledAtRandomAndResumedGivesTheUninterruptedMetrics) {
  const ExperimentConfig straight = Config("straight");
  const auto t0 = std::chrono::steady_clock::now();
  auto reference = Train(straight, train_, val_, Quiet(false));
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  const double run_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const fs::path a(straight.out);
  const auto want_csv = CheckedUntimed(CsvRows(a / "metrics.csv"), "uninterrupted metrics.csv");
  const auto want_jsonl = CheckedUntimed(JsonlRows(a / "metrics.jsonl"), "uninterrupted metrics.jsonl");
  const auto want_events = CheckedUntimed(EventRows(a / "tensorboard"), "uninterrupted events");
  ASSERT_GT(want_csv.size(), 150u);
  auto x = LoadCheckpoint(straight.out + "/checkpoints/latest.pt");
  ASSERT_TRUE(x.ok()) << x.status().message();

  const ExperimentConfig killed = Config("killed");
  const uint64_t seed = std::random_device{}();
  std::printf("seed %llu, uninterrupted run %.2f s\n", (unsigned long long)seed, run_seconds);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_us(0, std::max(2000, int(run_seconds * 1e6 / 4)));
  const size_t thresholds[] = {1, 100, 1000, 4096, size_t(1) << 30};
  std::uniform_int_distribution<int> pick(0, 4);
  const std::string latest = killed.out + "/checkpoints/latest.pt";
  // A whole killed-and-resumed run against the uninterrupted one: metrics in all three formats, weights bit-exact.
  auto check_run = [&](int run) {
    SCOPED_TRACE("run " + std::to_string(run) + ", seed " + std::to_string(seed));
    const fs::path b(killed.out);
    EXPECT_EQ(CheckedUntimed(CsvRows(b / "metrics.csv"), "killed metrics.csv"), want_csv);
    EXPECT_EQ(CheckedUntimed(JsonlRows(b / "metrics.jsonl"), "killed metrics.jsonl"), want_jsonl);
    EXPECT_EQ(CheckedUntimed(EventRows(b / "tensorboard"), "killed events"), want_events);
    auto y = LoadCheckpoint(latest);
    ASSERT_TRUE(y.ok()) << y.status().message();
    for (const auto& item : x->model->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), y->model->named_parameters()[item.key()])) << item.key();
    }
    EXPECT_TRUE(LoadCheckpoint(killed.out + "/checkpoints/best.pt").ok());
  };
  auto start = [&]() {
    const size_t flush = thresholds[pick(rng)];
    const pid_t pid = fork();
    if (pid == 0) {
      TrainOptions o = Quiet(fs::exists(latest));
      o.metrics_flush_bytes = flush;
      auto r = Train(killed, train_, val_, o);
      _exit(r.ok() ? 0 : 3);
    }
    return pid;
  };
  int kills = 0, runs = 0, attempts = 0;
  while (kills < 50) {
    const pid_t pid = start();
    ASSERT_GT(pid, 0);
    ++attempts;
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      ++kills;
      continue;
    }
    ASSERT_EQ(WEXITSTATUS(status), 0) << "a resumed run failed (seed " << seed << ")";
    check_run(++runs);  // the run reached its end before this kill
    if (::testing::Test::HasFailure()) return;
    fs::remove_all(killed.out);
  }
  if (fs::exists(killed.out)) {  // finish the last run and check it too
    const pid_t pid = start();
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the last resume failed (seed " << seed << ")";
    check_run(++runs);
  }
  std::printf("%d kills in %d attempts over %d whole runs, each checked\n", kills, attempts, runs);
}

// A torn last row, a row of a step after the checkpoint and a torn TensorBoard record, all as a killed process
// leaves them: the resume cuts them away before appending.
TEST_F(ResumeTest, ResumeCutsWhatTheStoppedProcessWroteAfterItsCheckpoint) {
  ExperimentConfig c = Config("cut");
  c.train.steps = 9;
  TrainOptions first = Quiet(false);
  first.stop_after_steps = 3;  // checkpoint at step 3
  ASSERT_TRUE(Train(c, train_, val_, first).ok());
  const fs::path out(c.out);
  std::ofstream(out / "metrics.csv", std::ios::app) << "4,train/loss,1.5\n5,train/lo";
  std::ofstream(out / "metrics.jsonl", std::ios::app) << "{\"step\": 4, \"tag\": \"train/loss\", \"value\": 1.5}\n{\"st";
  fs::path events;
  for (const auto& e : fs::directory_iterator(out / "tensorboard")) events = e.path();
  std::ofstream(events, std::ios::app | std::ios::binary) << std::string("\x20\0\0\0\0\0", 6);
  ASSERT_TRUE(Train(c, train_, val_, Quiet(true)).ok());
  const auto rows = CheckedUntimed(CsvRows(out / "metrics.csv"), "metrics.csv");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().step, 9);
  for (const Row& r : rows) EXPECT_NE(r.value, "1.5") << r;
  CheckedUntimed(JsonlRows(out / "metrics.jsonl"), "metrics.jsonl");
  EXPECT_EQ(CheckedUntimed(EventRows(out / "tensorboard"), "events").size(), rows.size());
}

TEST_F(ResumeTest, ASecondTrainerInTheSameFolderIsRefused) {
  ExperimentConfig c = Config("locked");
  fs::create_directories(c.out);
  auto held = FileLock::TryAcquire(c.out + "/train.lock", "held by the test");
  ASSERT_TRUE(held.ok()) << held.status().message();
  auto refused = Train(c, train_, val_, Quiet(false));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << "retryable, not a permanent failure of the task";
  EXPECT_NE(refused.status().message().find("another process is training in " + c.out), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << refused.status().message();
  EXPECT_FALSE(fs::exists(c.out + "/metrics.csv")) << "the refused trainer must not touch the folder";
}

TEST_F(ResumeTest, AFolderWithoutACheckpointStartsAfreshWithTheOldFilesMovedAside) {
  ExperimentConfig c = Config("aside");
  c.train.steps = 3;
  fs::create_directories(fs::path(c.out) / "tensorboard");
  std::ofstream(fs::path(c.out) / "metrics.csv") << "step,tag,value\n1,train/loss,9.99\n";
  std::ofstream(fs::path(c.out) / "tensorboard" / "events.out.tfevents.1.old") << "x";
  ASSERT_TRUE(Train(c, train_, val_, Quiet(false)).ok());
  const auto rows = CsvRows(fs::path(c.out) / "metrics.csv");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.front().step, 1);
  for (const Row& r : rows) EXPECT_NE(r.value, "9.99") << "appended to an earlier run's metrics";
  fs::path aside;
  for (const auto& e : fs::directory_iterator(c.out)) {
    if (e.path().filename().string().rfind("previous-", 0) == 0) aside = e.path();
  }
  ASSERT_FALSE(aside.empty()) << "the earlier files were not moved aside";
  EXPECT_EQ(ReadAll(aside / "metrics.csv"), "step,tag,value\n1,train/loss,9.99\n");
  EXPECT_TRUE(fs::exists(aside / "tensorboard" / "events.out.tfevents.1.old"));
}

TEST_F(ResumeTest, ADamagedCheckpointIsRefusedByName) {
  ExperimentConfig c = Config("damaged");
  c.train.steps = 3;
  ASSERT_TRUE(Train(c, train_, val_, Quiet(false)).ok());
  const std::string latest = c.out + "/checkpoints/latest.pt";
  ASSERT_TRUE(LoadCheckpoint(latest).ok());
  std::string bytes = ReadAll(latest);
  bytes[bytes.size() / 2] ^= 0x10;  // one bit inside the archive
  std::ofstream(latest, std::ios::binary | std::ios::trunc) << bytes;
  auto flipped = LoadCheckpoint(latest);
  ASSERT_FALSE(flipped.ok()) << "a checkpoint with a flipped bit loaded";
  EXPECT_EQ(flipped.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(flipped.status().message().find(latest + ": checkpoint is damaged: CRC-32C"), std::string::npos)
      << flipped.status().message();
  auto resumed = Train(c, train_, val_, Quiet(true));
  ASSERT_FALSE(resumed.ok());
  EXPECT_NE(resumed.status().message().find(latest), std::string::npos) << resumed.status().message();
  bytes[bytes.size() / 2] ^= 0x10;
  std::ofstream(latest, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 100);  // truncated
  auto truncated = LoadCheckpoint(latest);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find(latest), std::string::npos) << truncated.status().message();
}

}  // namespace
}  // namespace cadenza
