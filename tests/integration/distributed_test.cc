// cadenza-worker under mpirun: a world of 2 follows a world of 1, resume across world sizes, fail-fast on a stall.
#include <gtest/gtest.h>

#include "tests/support/shell.h"
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace {

using cadenza::Shell;
using cadenza::ShellRun;

namespace fs = std::filesystem;


// Two ranks on a 2-core machine shared with other work: one thread each, passive OpenMP waits, no binding.
std::string MpiRun(int ranks, const std::string& args, const std::string& extra_env = "") {
  return std::string(CADENZA_MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np " +
         std::to_string(ranks) + " -x OMP_WAIT_POLICY=passive -x OMP_NUM_THREADS=1" + extra_env + " " +
         CADENZA_WORKER + " " + args;
}

// metrics.csv rows "step,tag,value" -> tag -> step -> value (a later row for the same step wins).
std::map<std::string, std::map<long, double>> ReadMetrics(const fs::path& run) {
  std::map<std::string, std::map<long, double>> m;
  std::ifstream in(run / "metrics.csv");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string step, tag, value;
    std::getline(ss, step, ',');
    std::getline(ss, tag, ',');
    std::getline(ss, value, ',');
    m[tag][std::stol(step)] = std::stod(value);
  }
  return m;
}

double MaxRelativeDifference(const std::map<long, double>& a, const std::map<long, double>& b) {
  double worst = 0;
  for (const auto& [step, v] : a) {
    auto it = b.find(step);
    if (it == b.end()) return INFINITY;
    worst = std::max(worst, std::fabs(v - it->second) / std::max(1e-12, std::fabs(v)));
  }
  return worst;
}

class DistributedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    dir_ = fs::temp_directory_path() / ("cadenza_dist_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string midi = (dir_ / "midi").string(), ds = (dir_ / "ds").string();
    ShellRun synth = Shell(std::string(CADENZA_CLI) + " synth --out " + midi + " --count 30 --seed 4");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    ShellRun ingest = Shell(std::string(CADENZA_CLI) + " ingest " + midi + " --out " + ds + " --val 0.2 --quiet");
    ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // A tiny model without dropout: dropout masks are drawn per rank, so only a dropout-free run can match
  // a world of one exactly (docs/distributed.md).
  static std::string Experiment(const std::string& name, const std::string& model, int steps = 20,
                                const std::string& more_train_keys = "") {
    const fs::path exp = dir_ / (name + ".yaml");
    std::ofstream(exp) << "name: " << name << "\ndataset: " << (dir_ / "ds").string() << "\nout: " << (dir_ / name).string()
                       << "\nmodel: " << model
                       << "\ntrain: {seq_len: 64, batch_size: 8, steps: " << steps
                       << ", lr: 0.002, warmup_steps: 4, eval_every: 10, eval_windows: 8, threads: 1, seed: 3" << more_train_keys << "}\n";
    return exp.string();
  }
  static inline fs::path dir_;
};

constexpr const char* kTransformer = "{family: transformer, d_model: 32, layers: 2, heads: 4, ff_dim: 64, max_len: 128, dropout: 0.0}";
constexpr const char* kLstm = "{family: lstm, d_model: 32, layers: 1, hidden: 48, attention: general, dropout: 0.0}";

TEST_F(DistributedTest, HelpAndUsageErrors) {
  ShellRun help = Shell(std::string(CADENZA_WORKER) + " train --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  for (const char* opt : {"--out", "--threads", "--bucket-mb", "--timeline", "--timeout", "--resume"}) {
    EXPECT_NE(help.output.find(opt), std::string::npos) << opt;
  }
  EXPECT_EQ(Shell(std::string(CADENZA_WORKER) + " frobnicate").exit_code, 2);
  // An odd global batch cannot split over two ranks: the error names the field.
  const fs::path exp = dir_ / "odd.yaml";
  std::ofstream(exp) << "name: odd\ndataset: " << (dir_ / "ds").string() << "\nout: " << (dir_ / "odd").string()
                     << "\nmodel: " << kTransformer << "\ntrain: {seq_len: 64, batch_size: 7, steps: 2, threads: 1}\n";
  ShellRun odd = Shell(MpiRun(2, "train " + exp.string() + " --quiet --timeout 30"));
  EXPECT_NE(odd.exit_code, 0);
  EXPECT_NE(odd.output.find("train.batch_size 7 is the global batch"), std::string::npos) << odd.output;
}

void ExpectWorldTwoFollowsWorldOne(const std::string& exp1, const std::string& exp2, const fs::path& out1,
                                   const fs::path& out2) {
  ShellRun one = Shell(std::string(CADENZA_WORKER) + " train " + exp1 + " --quiet --threads 1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ShellRun two = Shell(MpiRun(2, "train " + exp2 + " --quiet --threads 1 --bucket-mb 0.02 --timeline " +
                                (out2 / "timeline.json").string()));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("ranks          2 (mpi)"), std::string::npos) << two.output;
  auto m1 = ReadMetrics(out1), m2 = ReadMetrics(out2);
  ASSERT_EQ(m1["train/loss"].size(), 20u);
  ASSERT_EQ(m2["train/loss"].size(), 20u);
  const double train_diff = MaxRelativeDifference(m1["train/loss"], m2["train/loss"]);
  const double val_diff = MaxRelativeDifference(m1["val/nll_per_token"], m2["val/nll_per_token"]);
  std::printf("world 1 vs 2: max relative loss difference %.3g over 20 steps (val %.3g); loss %.6f -> %.6f\n",
              train_diff, val_diff, m1["train/loss"][1], m1["train/loss"][20]);
  EXPECT_LT(train_diff, 1e-5);
  EXPECT_LT(val_diff, 1e-5);
  EXPECT_LT(m1["train/loss"][20], m1["train/loss"][1]) << "the model must learn something";
  // Both ranks wrote a timeline with phases and per-bucket allreduce spans.
  for (int r = 0; r < 2; ++r) {
    std::ifstream t(out2 / ("timeline.rank" + std::to_string(r) + ".json"));
    std::string text((std::istreambuf_iterator<char>(t)), std::istreambuf_iterator<char>());
    for (const char* phase : {"\"forward\"", "\"backward\"", "\"allreduce wait\"", "\"optimizer\"", "allreduce bucket 1"}) {
      EXPECT_NE(text.find(phase), std::string::npos) << "rank " << r << ": " << phase;
    }
  }
}

TEST_F(DistributedTest, WorldOfTwoFollowsWorldOfOneTransformer) {
  ExpectWorldTwoFollowsWorldOne(Experiment("t1", kTransformer), Experiment("t2", kTransformer), dir_ / "t1", dir_ / "t2");
  // The single-process trainer (`cadenza train`, no GradientSync) takes the same steps as well.
  ShellRun plain = Shell(std::string(CADENZA_CLI) + " train " + Experiment("t0", kTransformer) + " --quiet --threads 1");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  const double diff = MaxRelativeDifference(ReadMetrics(dir_ / "t0")["train/loss"], ReadMetrics(dir_ / "t2")["train/loss"]);
  std::printf("cadenza train vs cadenza-worker at a world of 2: max relative loss difference %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
}

TEST_F(DistributedTest, WorldOfTwoFollowsWorldOfOneLstm) {
  ExpectWorldTwoFollowsWorldOne(Experiment("l1", kLstm), Experiment("l2", kLstm), dir_ / "l1", dir_ / "l2");
}

TEST_F(DistributedTest, ResumesAtAnotherWorldSize) {
  const std::string straight = Experiment("straight", kTransformer), split = Experiment("split", kTransformer);
  ASSERT_EQ(Shell(std::string(CADENZA_WORKER) + " train " + straight + " --quiet --threads 1").exit_code, 0);
  ShellRun first = Shell(MpiRun(2, "train " + split + " --quiet --threads 1 --stop-after 7"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("steps          7 of 20 (stopped"), std::string::npos) << first.output;
  ShellRun rest = Shell(std::string(CADENZA_WORKER) + " train " + split + " --quiet --threads 1 --resume");
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  EXPECT_NE(rest.output.find("steps          20 of 20"), std::string::npos) << rest.output;
  auto a = ReadMetrics(dir_ / "straight"), b = ReadMetrics(dir_ / "split");
  ASSERT_EQ(b["train/loss"].size(), 20u);
  const double diff = MaxRelativeDifference(a["train/loss"], b["train/loss"]);
  std::printf("world 2 (7 steps) then world 1 (13 steps) vs world 1 straight: max relative loss difference %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_TRUE(fs::exists(dir_ / "split" / "model_state.pt"));
}

// train.eval_samples on two ranks: each rank samples its share at every validation (so neither waits out the
// other's sampling at the next reduction), and the metrics count every piece once.
TEST_F(DistributedTest, ValidationSamplesAreSharedByTheRanks) {
  const std::string exp = Experiment("samples", kTransformer, 20, ", eval_samples: 3, eval_sample_bars: 2");
  ShellRun r = Shell(MpiRun(2, "train " + exp + " --quiet --threads 1 --timeline " + (dir_ / "samples" / "timeline.json").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto m = ReadMetrics(dir_ / "samples");
  ASSERT_EQ(m["sample/pieces"].size(), 2u) << "validations at steps 10 and 20";
  for (const auto& [step, pieces] : m["sample/pieces"]) EXPECT_EQ(pieces, 3) << "step " << step;
  EXPECT_EQ(m["sample/structureness"].size(), 2u);
  for (int rank = 0; rank < 2; ++rank) {
    std::ifstream t(dir_ / "samples" / ("timeline.rank" + std::to_string(rank) + ".json"));
    std::string text((std::istreambuf_iterator<char>(t)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("\"validation samples\""), std::string::npos) << "rank " << rank;
  }
}

// SIGTERM on one rank only (Slurm signals every task, but not at the same instant): all ranks stop after the
// same step with a checkpoint and exit 0; the run then finishes at a world of one.
TEST_F(DistributedTest, SignalOnOneRankStopsAllAtTheSameStep) {
  const std::string exp = Experiment("term", kTransformer);
  ShellRun r = Shell(MpiRun(2, "train " + exp + " --quiet --threads 1", " -x CADENZA_WORKER_FAULT=1:5:term"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("steps          6 of 20 (stopped: resume with --resume)"), std::string::npos) << r.output;
  ShellRun rest = Shell(std::string(CADENZA_WORKER) + " train " + exp + " --quiet --threads 1 --resume");
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  EXPECT_NE(rest.output.find("steps          20 of 20"), std::string::npos) << rest.output;
}

TEST_F(DistributedTest, StalledRankStopsTheJobWithExitCode75) {
  const std::string exp = Experiment("stall", kTransformer);
  ShellRun r = Shell(MpiRun(2, "train " + exp + " --quiet --threads 1 --timeout 5", " -x CADENZA_WORKER_FAULT=1:3:stall"));
  std::printf("stalled rank: exit %d after %.1f s\n", r.exit_code, r.seconds);
  EXPECT_EQ(r.exit_code, 75) << r.output;
  EXPECT_LT(r.seconds, 5 + 30) << r.output;
  EXPECT_NE(r.output.find("did not complete within 5 s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("behind: rank 1 last at step 2"), std::string::npos) << r.output;
}

TEST_F(DistributedTest, DeadRankStopsTheJob) {
  const std::string exp = Experiment("dead", kTransformer);
  ShellRun r = Shell(MpiRun(2, "train " + exp + " --quiet --threads 1 --timeout 4", " -x CADENZA_WORKER_FAULT=1:3:exit"));
  std::printf("dead rank: exit %d after %.1f s\n", r.exit_code, r.seconds);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.seconds, 4 + 30) << r.output;
}

}  // namespace
