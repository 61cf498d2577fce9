// Trust boundaries of a run as a user meets them on the command line (issue 15): a signal to `cadenza train`
// leaves no process behind, a second trainer in the same folder is refused, an edited shard is refused before
// training, and an evaluate option that would need more memory than the budget ends at once with the reason.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/shell.h"

namespace {

using cadenza::Shell;
using cadenza::ShellRun;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using cadenza::Cadenza;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Live (not zombie) processes whose parent is `parent`.
std::vector<pid_t> Children(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadAll(e.path() / "stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z') {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

bool Alive(pid_t pid) {
  const std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

class RunFolderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Orphans of the processes this test starts are re-parented to it (not to init), so that it can see and reap them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_runfolder_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    fs::remove_all(dir_);
  }

  // A small dataset and an experiment that trains for far longer than the test waits.
  std::string Experiment(int64_t steps) {
    const std::string midi = (dir_ / "midi").string(), ds = (dir_ / "ds").string();
    EXPECT_EQ(Cadenza("synth --out " + midi + " --count 24 --seed 3").exit_code, 0);
    EXPECT_EQ(Cadenza("ingest " + midi + " --out " + ds + " --val 0.2 --quiet").exit_code, 0);
    const fs::path exp = dir_ / "exp.yaml";
    std::ofstream(exp) << "name: sig\ndataset: " << ds << "\nout: " << (dir_ / "run").string()
                       << "\nmodel: {family: transformer, d_model: 32, layers: 1, heads: 2, ff_dim: 64, max_len: 64}\n"
                          "train: {seq_len: 32, batch_size: 4, steps: " << steps << ", eval_every: 2, eval_windows: 4, threads: 1}\n";
    return exp.string();
  }

  // Starts `cadenza train EXP --quiet` with its output in a file; returns its pid once its model process is
  // training (the first checkpoint exists).
  pid_t StartTraining(const std::string& exp, pid_t* model) {
    const std::string log = (dir_ / "train.log").string();
    const pid_t pid = fork();
    if (pid == 0) {
      std::freopen(log.c_str(), "w", stdout);
      dup2(fileno(stdout), 2);
      execl(CADENZA_CLI, CADENZA_CLI, "train", exp.c_str(), "--quiet", (char*)nullptr);
      _exit(127);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline && !fs::exists(dir_ / "run/checkpoints/latest.pt")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(fs::exists(dir_ / "run/checkpoints/latest.pt")) << ReadAll(log);
    const auto children = Children(pid);
    EXPECT_EQ(children.size(), 1u) << "cadenza should run exactly one cadenza-model";
    *model = children.empty() ? -1 : children[0];
    return pid;
  }

  // Waits until neither process is alive; returns the seconds it took (or 1e9 after `limit` seconds).
  double SecondsUntilGone(pid_t cli, pid_t model, double limit) {
    const auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < limit) {
      while (waitpid(-1, nullptr, WNOHANG) > 0) {  // reap cadenza, and cadenza-model if it was orphaned to us
      }
      if (!Alive(cli) && (model < 0 || !Alive(model))) return std::chrono::duration<double>(Clock::now() - t0).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 1e9;
  }
  fs::path dir_;
};

TEST_F(RunFolderTest, SigtermToTrainStopsItsModelProcessAndASecondTrainerIsRefused) {
  const std::string exp = Experiment(1000000);
  pid_t model = -1;
  const pid_t cli = StartTraining(exp, &model);
  ASSERT_GT(model, 0);
  // A second trainer in the same folder: refused by name, while the first keeps training.
  ShellRun second = Cadenza("train " + exp + " --quiet");
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("another process is training in " + (dir_ / "run").string()), std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("held by pid " + std::to_string(model)), std::string::npos) << second.output;
  ShellRun resume = Cadenza("train " + exp + " --resume --quiet");
  EXPECT_EQ(resume.exit_code, 1) << resume.output;
  EXPECT_NE(resume.output.find("another process is training in"), std::string::npos) << resume.output;
  EXPECT_TRUE(Alive(model));

  ASSERT_EQ(::kill(cli, SIGTERM), 0);
  const double seconds = SecondsUntilGone(cli, model, 5.0);
  EXPECT_LT(seconds, 5.0) << "cadenza or cadenza-model still running 5 s after SIGTERM";
  std::printf("SIGTERM to cadenza train: both processes gone after %.2f s\n", seconds);
  const std::string log = ReadAll(dir_ / "train.log");
  EXPECT_NE(log.find("(stopped: resume with --resume)"), std::string::npos) << "the model process checkpoints and says so:\n" << log;
}

TEST_F(RunFolderTest, SigkillToTrainTakesItsModelProcessAlong) {
  const std::string exp = Experiment(1000000);
  pid_t model = -1;
  const pid_t cli = StartTraining(exp, &model);
  ASSERT_GT(model, 0);
  ASSERT_EQ(::kill(cli, SIGKILL), 0);  // no handler can forward this one: the kernel's parent-death signal does
  const double seconds = SecondsUntilGone(cli, model, 5.0);
  EXPECT_LT(seconds, 5.0) << "cadenza-model outlived a SIGKILLed cadenza";
  std::printf("SIGKILL to cadenza train: cadenza-model gone after %.2f s\n", seconds);
  // Its run folder is unlocked again and resumable.
  ShellRun again = Cadenza("train " + exp + " --quiet");
  EXPECT_NE(again.output.find("pass --resume"), std::string::npos) << again.output;
}

TEST_F(RunFolderTest, TrainingRefusesAShardEditedAfterIngest) {
  const std::string exp = Experiment(4);
  fs::path shard;
  for (const auto& e : fs::directory_iterator(dir_ / "ds")) {
    if (e.path().extension() == ".h5") shard = e.path();
  }
  ASSERT_FALSE(shard.empty());
  std::string bytes = ReadAll(shard);
  bytes[bytes.size() - 9] ^= 0x01;  // one bit, as a disk or an editor might change it
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << bytes;
  ShellRun train = Cadenza("train " + exp + " --quiet");
  EXPECT_EQ(train.exit_code, 1) << train.output;
  EXPECT_NE(train.output.find(shard.string() + ": checksum mismatch"), std::string::npos) << train.output;
  EXPECT_FALSE(fs::exists(dir_ / "run/checkpoints/latest.pt"));
}

// The case: a 1e6-note file with --segment beat --max-segments 100000 took 272 s and 7.4 GB.
TEST_F(RunFolderTest, EvaluateRefusesAnSsmOverItsMemoryBudgetAtOnce) {
  // One track of 1,000,000 quarter notes (running status): about 8 MB.
  std::string track;
  for (int i = 0; i < 1000000; ++i) {
    const char pitch = static_cast<char>(48 + i % 24);
    track += std::string("\x00\x90", 2) + pitch + '\x50';          // note on at delta 0
    track += std::string("\x83\x60", 2) + pitch + std::string(1, '\0');  // note off (velocity 0) after 480 ticks
  }
  track += std::string("\x00\xFF\x2F\x00", 4);
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const fs::path big = dir_ / "big.mid";
  std::ofstream(big, std::ios::binary) << "MThd" << be32(6) << std::string("\x00\x00\x00\x01\x01\xE0", 6) << "MTrk"
                                       << be32(uint32_t(track.size())) << track;
  ShellRun r = Cadenza("evaluate " + big.string() + " --out " + (dir_ / "r.json").string() +
                       " --segment beat --max-segments 100000");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--max-segments 100000: the self-similarity matrix of 100000 segments and its path sums "
                          "would need 114441 MiB, more than --max-ssm-mb 512 (lower --max-segments to 6688 or less"),
            std::string::npos)
      << r.output;
  EXPECT_LT(r.seconds, 5.0);
  std::printf("evaluate --max-segments 100000 on a 1e6-note file: refused in %.2f s\n", r.seconds);
  EXPECT_FALSE(fs::exists(dir_ / "r.json"));
  // Within the budget the same options run (a raised budget is the user's explicit choice).
  ShellRun help = Cadenza("evaluate --help");
  EXPECT_NE(help.output.find("--max-ssm-mb"), std::string::npos) << help.output;
}

}  // namespace
