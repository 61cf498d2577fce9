// A real one-machine Slurm cluster (slurm/local-cluster.sh: munged, slurmctld, slurmd; own folder and ports per test):
// training through slurm/train.sbatch (same losses as mpirun, requeue, the warning signal), a coordinator whose
// launcher submits and cancels worker groups, and the coordinator's own job requeued mid-sweep. When Slurm cannot
// start, every test here fails with the reason (scripts/install-deps.sh installs slurm-wlm and munge).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/local_cluster.h"
#include "coordinator/client.h"
#include "tests/support/shell.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* kToken = "slurm-test-token-1";
const char* kWorkerToken = "slurm-test-worker-token-1";
const std::string kSource = CADENZA_SOURCE_DIR;

std::string Slurp(const fs::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::chrono::milliseconds every = 200ms) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return done();
}

// `scontrol show job` fields of one job.
struct SlurmJob {
  std::string state;  // PENDING, RUNNING, COMPLETED, CANCELLED, ... ("" when Slurm does not know it)
  int restarts = 0;
  std::string exit_code;  // "0:0"
};
SlurmJob ShowJob(const std::string& id) {
  SlurmJob j;
  const ShellRun r = Shell("scontrol show job " + id);
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex("JobState=(\\S+)"))) j.state = m[1];
  if (std::regex_search(r.output, m, std::regex("Restarts=(\\d+)"))) j.restarts = std::stoi(m[1]);
  if (std::regex_search(r.output, m, std::regex(" ExitCode=(\\S+)"))) j.exit_code = m[1];
  return j;
}
bool Finished(const std::string& state) { return !state.empty() && state != "PENDING" && state != "RUNNING" && state != "COMPLETING" && state != "CONFIGURING" && state != "REQUEUED"; }

// metrics.csv: tag -> step -> how many rows, and tag -> step -> the last value.
struct Metrics {
  std::map<std::string, std::map<long, int>> rows;
  std::map<std::string, std::map<long, double>> value;
};
Metrics ReadMetrics(const fs::path& run) {
  Metrics m;
  std::ifstream in(run / "metrics.csv");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string step, tag, value;
    std::getline(ss, step, ',');
    std::getline(ss, tag, ',');
    std::getline(ss, value, ',');
    if (step.empty() || value.empty()) continue;
    m.rows[tag][std::stol(step)]++;
    m.value[tag][std::stol(step)] = std::stod(value);
  }
  return m;
}
long LastStep(const fs::path& run) {
  const Metrics m = ReadMetrics(run);
  auto it = m.value.find("train/loss");
  return it == m.value.end() || it->second.empty() ? 0 : it->second.rbegin()->first;
}
// Every step 1..steps has exactly one train/loss row.
void ExpectEachStepOnce(const fs::path& run, long steps) {
  const Metrics m = ReadMetrics(run);
  ASSERT_TRUE(m.rows.count("train/loss")) << run;
  const auto& rows = m.rows.at("train/loss");
  EXPECT_EQ(rows.size(), size_t(steps)) << run;
  for (long s = 1; s <= steps; ++s) {
    auto it = rows.find(s);
    EXPECT_TRUE(it != rows.end() && it->second == 1) << "step " << s << ": " << (it == rows.end() ? 0 : it->second) << " rows";
  }
}

int FreePort() {
  for (int i = 0; i < 200; ++i) {
    const int p = 20000 + int((::getpid() * 7919L + i * 104729L) % 30000);
    if (Shell("(exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(p) + ") 2>/dev/null").exit_code != 0) return p;
  }
  return 0;
}

class SlurmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("CADENZA_WORKER", CADENZA_WORKER, 1);  // the scripts' and the launcher's worker binary
    setenv("CADENZA_CLI", CADENZA_CLI, 1);
    // The node offers 4 CPUs on this 2-core machine (CADENZA_SLURM_CPUS): no core binding to CPUs that do not exist.
    setenv("CADENZA_CPU_BIND", "none", 1);
    suite_ = fs::temp_directory_path() / ("cadenza_slurm_" + std::to_string(::getpid()));
    fs::remove_all(suite_);
    fs::create_directories(suite_);
    ShellRun synth = Shell(std::string(CADENZA_CLI) + " synth --out " + (suite_ / "midi").string() + " --count 30 --seed 4");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    ShellRun ingest = Shell(std::string(CADENZA_CLI) + " ingest " + (suite_ / "midi").string() + " --out " + (suite_ / "ds").string() +
                            " --val 0.2 --test 0.2 --quiet");
    ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  }
  static void TearDownTestSuite() { fs::remove_all(suite_); }

  void SetUp() override {
    dir_ = suite_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
    // alice's user token (submit, status) and her worker token (what the launcher hands its groups).
    std::ofstream(dir_ / "tokens.txt") << kToken << " alice\n" << kWorkerToken << " alice worker\n";
    fs::permissions(dir_ / "tokens.txt", fs::perms::owner_read | fs::perms::owner_write);
    std::ofstream(dir_ / "alice.token") << kToken << "\n";
    // Slurm must come up: a missing package or a daemon that does not start fails the test with the reason.
    ASSERT_EQ(Shell("command -v sbatch && command -v slurmctld && command -v munged").exit_code, 0)
        << "Slurm is not installed: scripts/install-deps.sh installs slurm-wlm and munge";
    // A short folder: slurmstepd's sockets live below it and a Unix socket path has at most 108 bytes.
    static int clusters = 0;
    cluster_ = fs::temp_directory_path() / ("czs-" + std::to_string(::getpid()) + "-" + std::to_string(++clusters));
    fs::remove_all(cluster_);
    const ShellRun up = Shell("CADENZA_SLURM_CPUS=4 bash " + kSource + "/slurm/local-cluster.sh start " + cluster_.string());
    cluster_up_ = true;
    ASSERT_EQ(up.exit_code, 0) << "the one-machine Slurm cluster did not start:\n" << up.output << "\nslurmctld.log:\n"
                               << Slurp(cluster_ / "log/slurmctld.log") << "\nslurmd.log:\n" << Slurp(cluster_ / "log/slurmd.log");
    setenv("SLURM_CONF", (cluster_ / "slurm.conf").string().c_str(), 1);
    std::printf("slurm: %s", up.output.c_str());
  }
  void TearDown() override {
    if (coordinator_ > 0) {
      kill(-coordinator_, SIGKILL);
      waitpid(coordinator_, nullptr, 0);
    }
    if (HasFailure()) {
      for (const fs::path& log : {cluster_ / "log/slurmctld.log", cluster_ / "log/slurmd.log"}) {
        std::fprintf(stderr, "---- %s\n%s\n", log.c_str(), Slurp(log).c_str());
      }
      for (const auto& e : fs::recursive_directory_iterator(dir_)) {
        const std::string ext = e.path().extension();
        if (e.is_regular_file() && (ext == ".log" || ext == ".out") && e.path().string().find("/runs/") == std::string::npos) {
          std::fprintf(stderr, "---- %s\n%s\n", e.path().c_str(), Slurp(e.path()).c_str());
        }
      }
    }
    if (cluster_up_) {
      // Every job of this cluster killed (and gone from squeue) before its daemons stop.
      Shell("scancel --full --signal=KILL --user=$(id -un) 2>/dev/null");
      WaitFor([] { return Shell("squeue --noheader --me").output.find_first_not_of(" \n") == std::string::npos; }, 15s, 250ms);
      Shell("bash " + kSource + "/slurm/local-cluster.sh stop " + cluster_.string());
      fs::remove_all(cluster_);
    }
    unsetenv("SLURM_CONF");
  }

  // A tiny experiment without dropout (so 2 ranks match mpirun's 2 ranks exactly); a checkpoint every `eval_every`.
  std::string Experiment(const std::string& name, int steps, int eval_every) {
    const fs::path exp = dir_ / (name + ".yaml");
    std::ofstream(exp) << "name: " << name << "\ndataset: " << (suite_ / "ds").string() << "\nout: " << (dir_ / "runs" / name).string()
                       << "\nmodel: {family: transformer, d_model: 32, layers: 2, heads: 4, ff_dim: 64, max_len: 128, dropout: 0.0}"
                       << "\ntrain: {seq_len: 64, batch_size: 8, steps: " << steps << ", lr: 0.002, warmup_steps: 4, eval_every: "
                       << eval_every << ", eval_windows: 4, threads: 1, seed: 3}\n";
    return exp.string();
  }
  fs::path Run(const std::string& name) const { return dir_ / "runs" / name; }

  // sbatch SCRIPT ARGS with the log in the test folder; returns the job id.
  std::string Sbatch(const std::string& flags, const std::string& script, const std::string& args, const std::string& log) {
    const ShellRun r = Shell("sbatch --parsable --output=" + (dir_ / log).string() + " " + flags + " " + kSource + "/slurm/" + script + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string id = r.output.substr(0, r.output.find_first_of(";\n"));
    return id;
  }
  SlurmJob WaitFinished(const std::string& id, std::chrono::seconds timeout) {
    SlurmJob j;
    WaitFor([&] { return Finished((j = ShowJob(id)).state); }, timeout, 250ms);
    return j;
  }

  // A coordinator config with `launcher: slurm`: groups of one rank, idle after 2 s.
  fs::path LauncherConfig(const std::string& listen, const std::string& advertise) {
    const fs::path config = dir_ / "coordinator.yaml";
    std::ofstream(config) << "listen: " << listen << "\ndatabase: " << (dir_ / "state" / "coordinator.db").string()
                          << "\ntokens_file: " << (dir_ / "tokens.txt").string() << "\nhttp: {listen: off}"
                          << "\nheartbeat: {period_ms: 200, failure_threshold: 10, grace_ms: 1000, reaper_interval_ms: 100}"
                          << "\nlease: {duration_ms: 20000, retry_budget: 3, idle_poll_ms: 100}"
                          << "\nlauncher: slurm"
                          << "\nlaunch:\n  max_groups: 2\n  ranks_per_group: 1\n  threads_per_rank: 1\n  idle_timeout_s: 2\n"
                          << "  poll_ms: 300\n  user: alice\n  advertise: \"" << advertise << "\"\n"
                          << "  worker_args: [--bars, \"2\", --max-tokens, \"200\"]\n  state_dir: " << (dir_ / "state" / "launch").string()
                          << "\n  slurm:\n    script: " << kSource << "/slurm/worker.sbatch\n    job_name: cadenza-worker-test\n"
                          << "    sbatch_args: [--time=10]\n";
    fs::create_directories(dir_ / "state");
    return config;
  }
  std::unique_ptr<coord::CoordinatorClient> Client(int port) const {
    coord::ClientOptions o;
    o.target = "127.0.0.1:" + std::to_string(port);
    o.token = kToken;
    o.deadline_ms = 5000;
    return coord::CoordinatorClient::Connect(o);
  }
  // A sweep of `seeds` tiny runs of 12 steps, 2 samples each; returns the job ids.
  std::vector<int64_t> SubmitSweep(int port, int seeds, int steps) {
    const std::string base = Experiment("sweep", steps, steps / 2);
    std::ofstream(dir_ / "sweep-spec.yaml") << "name: sw\nseeds: [" << [&] {
      std::string s;
      for (int i = 1; i <= seeds; ++i) s += (i > 1 ? ", " : "") + std::to_string(i);
      return s;
    }() << "]\n";
    const ShellRun r = Shell(std::string(CADENZA_CLI) + " submit " + base + " --sweep " + (dir_ / "sweep-spec.yaml").string() +
                             " --samples 2 --coordinator 127.0.0.1:" + std::to_string(port) + " --token-file " + (dir_ / "alice.token").string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<int64_t> jobs;
    const size_t colon = r.output.rfind(':');
    std::istringstream in(colon == std::string::npos ? "" : r.output.substr(colon + 1));
    for (int64_t id; in >> id;) jobs.push_back(id);
    EXPECT_EQ(jobs.size(), size_t(seeds)) << r.output;
    return jobs;
  }
  // Every job succeeded, every succeeded task has exactly one result row, and nothing else has one.
  void ExpectOneResultPerTask(coord::CoordinatorClient* c, const std::vector<int64_t>& jobs) {
    for (int64_t id : jobs) {
      v1::Job job;
      ASSERT_TRUE(c->GetJob(id, &job).ok());
      EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.name() << ": " << job.error();
      std::multiset<int64_t> result_tasks;
      for (v1::TaskKind kind : {v1::TASK_KIND_TRAIN, v1::TASK_KIND_GENERATE, v1::TASK_KIND_EVALUATE, v1::TASK_KIND_AGGREGATE,
                                v1::TASK_KIND_SCORE, v1::TASK_KIND_PROBE}) {
        v1::QueryResultsRequest q;
        q.set_job_id(id);
        q.set_kind(kind);
        v1::QueryResultsResponse rows;
        ASSERT_TRUE(c->QueryResults(q, &rows).ok());
        for (const v1::ResultRow& r : rows.rows()) result_tasks.insert(r.task_id());
      }
      int succeeded = 0;
      for (const v1::TaskStatus& t : job.tasks()) {
        if (t.state() != v1::TASK_STATE_SUCCEEDED) continue;
        ++succeeded;
        EXPECT_EQ(result_tasks.count(t.task_id()), 1u) << job.name() << " task " << t.task_id();
      }
      EXPECT_EQ(result_tasks.size(), size_t(succeeded)) << job.name();
      EXPECT_GE(succeeded, 5) << job.name() << ": train, generate, evaluate, aggregate, score at least";
    }
  }
  std::vector<std::string> WorkerJobs() {
    const ShellRun r = Shell("squeue --noheader --name=cadenza-worker-test --format=%i");
    std::vector<std::string> ids;
    std::istringstream in(r.output);
    for (std::string id; in >> id;) ids.push_back(id);
    return ids;
  }

  static inline fs::path suite_;
  fs::path dir_, cluster_;
  bool cluster_up_ = false;
  pid_t coordinator_ = -1;
};

// 1. sbatch slurm/train.sbatch on 2 tasks (srun --mpi=pmix) takes the same steps as mpirun -np 2.
TEST_F(SlurmTest, TrainingThroughSbatchMatchesMpirun) {
  const auto t0 = Clock::now();
  const ShellRun mpi = Shell(std::string(CADENZA_MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np 2 -x OMP_WAIT_POLICY=passive " +
                             CADENZA_WORKER + " train " + Experiment("mpirun", 20, 10) + " --quiet --threads 1");
  ASSERT_EQ(mpi.exit_code, 0) << mpi.output;
  const std::string job = Sbatch("--ntasks=2", "train.sbatch", Experiment("sbatch", 20, 10) + " --quiet", "train-%j.out");
  const SlurmJob j = WaitFinished(job, 120s);
  const std::string log = Slurp(dir_ / ("train-" + job + ".out"));
  ASSERT_EQ(j.state, "COMPLETED") << log;
  EXPECT_EQ(j.exit_code, "0:0");
  EXPECT_EQ(j.restarts, 0);
  EXPECT_NE(log.find("ranks          2 (mpi)"), std::string::npos) << log;
  EXPECT_NE(log.find("no checkpoint in"), std::string::npos) << log;  // a new run
  const Metrics a = ReadMetrics(Run("mpirun")), b = ReadMetrics(Run("sbatch"));
  ASSERT_EQ(a.value.at("train/loss").size(), 20u);
  ASSERT_EQ(b.value.count("train/loss"), 1u) << log;
  ASSERT_EQ(b.value.at("train/loss").size(), 20u) << log;
  double worst = 0;
  for (const auto& [step, v] : a.value.at("train/loss")) worst = std::max(worst, std::fabs(v - b.value.at("train/loss").at(step)) / std::fabs(v));
  std::printf("sbatch (srun --mpi=pmix, 2 tasks) vs mpirun -np 2: max relative loss difference %.3g over 20 steps; %.1f s\n", worst,
              std::chrono::duration<double>(Clock::now() - t0).count());
  EXPECT_LT(worst, 1e-5);
  // A second sbatch of the finished folder continues it (resumes at its last step) instead of refusing.
  const std::string again = Sbatch("--ntasks=1", "train.sbatch", Experiment("sbatch", 20, 10) + " --quiet", "train-%j.out");
  const SlurmJob k = WaitFinished(again, 120s);
  const std::string log2 = Slurp(dir_ / ("train-" + again + ".out"));
  EXPECT_EQ(k.state, "COMPLETED") << log2;
  EXPECT_NE(log2.find("resuming from"), std::string::npos) << log2;
  EXPECT_NE(log2.find("steps          20 of 20"), std::string::npos) << log2;
  ExpectEachStepOnce(Run("sbatch"), 20);
}

// 2. scontrol requeue mid-training: the job starts again, resumes at the checkpoint, each step once in metrics.csv.
TEST_F(SlurmTest, RequeueMidTrainingResumesFromTheCheckpoint) {
  const auto t0 = Clock::now();
  const std::string exp = Experiment("requeue", 400, 20);
  const std::string job = Sbatch("--ntasks=2", "train.sbatch", exp + " --quiet", "train-%j.out");
  ASSERT_TRUE(WaitFor([&] { return (fs::exists(Run("requeue") / "checkpoints/latest.pt") && LastStep(Run("requeue")) >= 30) || Finished(ShowJob(job).state); }, 90s) &&
              !Finished(ShowJob(job).state))
      << Slurp(dir_ / ("train-" + job + ".out"));
  const long at = LastStep(Run("requeue"));
  const ShellRun rq = Shell("scontrol requeue " + job);
  ASSERT_EQ(rq.exit_code, 0) << rq.output;
  const SlurmJob j = WaitFinished(job, 150s);
  const std::string log = Slurp(dir_ / ("train-" + job + ".out"));
  std::printf("requeued at step %ld of 400: %s after %d restart(s), %.1f s\n", at, j.state.c_str(), j.restarts,
              std::chrono::duration<double>(Clock::now() - t0).count());
  ASSERT_EQ(j.state, "COMPLETED") << log;
  EXPECT_EQ(j.restarts, 1);
  EXPECT_NE(log.find("start 1 "), std::string::npos) << log;  // the log appends: both starts are in it
  EXPECT_NE(log.find("start 2 "), std::string::npos) << log;
  EXPECT_NE(log.find("resuming from"), std::string::npos) << log;
  EXPECT_NE(log.find("steps          400 of 400"), std::string::npos) << log;
  ExpectEachStepOnce(Run("requeue"), 400);
}

// 3. The time-limit warning: SIGUSR1 to the batch script (what --signal=B:USR1@120 sends before the limit; sent here
// with scancel --batch because Slurm's minimum limit is a minute and its warning timer ticks every ~30 s): the ranks
// checkpoint and exit 4, the script requeues its own job, the next start resumes and completes.
TEST_F(SlurmTest, WarningSignalCheckpointsAndTheJobRequeuesItself) {
  const auto t0 = Clock::now();
  const std::string job = Sbatch("--ntasks=2 --time=5", "train.sbatch", Experiment("warned", 400, 20) + " --quiet", "train-%j.out");
  ASSERT_TRUE(WaitFor([&] { return (fs::exists(Run("warned") / "checkpoints/latest.pt") && LastStep(Run("warned")) >= 30) || Finished(ShowJob(job).state); }, 90s) &&
              !Finished(ShowJob(job).state))
      << Slurp(dir_ / ("train-" + job + ".out"));
  const long at = LastStep(Run("warned"));
  const ShellRun sig = Shell("scancel --batch --signal=USR1 " + job);
  ASSERT_EQ(sig.exit_code, 0) << sig.output;
  const SlurmJob j = WaitFinished(job, 150s);
  const std::string log = Slurp(dir_ / ("train-" + job + ".out"));
  std::printf("warning signal at step %ld of 400: %s after %d restart(s), %.1f s\n", at, j.state.c_str(), j.restarts,
              std::chrono::duration<double>(Clock::now() - t0).count());
  ASSERT_EQ(j.state, "COMPLETED") << log;
  EXPECT_EQ(j.restarts, 1) << log;
  EXPECT_NE(log.find("SIGUSR1 (time limit or preemption ahead)"), std::string::npos) << log;
  EXPECT_NE(log.find("stopped at a checkpoint after the warning signal: requeueing job " + job), std::string::npos) << log;
  EXPECT_NE(log.find("resuming from"), std::string::npos) << log;
  EXPECT_NE(log.find("steps          400 of 400"), std::string::npos) << log;
  ExpectEachStepOnce(Run("warned"), 400);
}

// 4. A sweep with `launcher: slurm`: the coordinator submits worker groups while tasks wait (at most max_groups),
// the sweep completes, and the idle groups are cancelled; `cadenza status` shows the decisions.
TEST_F(SlurmTest, CoordinatorLaunchesAndCancelsWorkerGroups) {
  const auto t0 = Clock::now();
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const fs::path config = LauncherConfig("127.0.0.1:" + std::to_string(port), "");
  coordinator_ = coord::SpawnProcessGroup({CADENZA_CLI, "coordinator", "--config", config.string()}, (dir_ / "coordinator.log").string(), /*append=*/false);
  ASSERT_TRUE(WaitFor([&] { return Slurp(dir_ / "coordinator.log").find("listening on") != std::string::npos; }, 20s))
      << Slurp(dir_ / "coordinator.log");
  EXPECT_TRUE(WorkerJobs().empty()) << "no task waits: no group yet";
  const std::vector<int64_t> jobs = SubmitSweep(port, 3, 12);
  auto c = Client(port);
  size_t most = 0;
  ASSERT_TRUE(WaitFor([&] {
    most = std::max(most, WorkerJobs().size());
    v1::ListJobsRequest r;
    r.set_active_only(true);
    v1::ListJobsResponse active;
    return c->ListJobs(r, &active).ok() && active.jobs_size() == 0;
  }, 150s, 500ms)) << Slurp(dir_ / "coordinator.log");
  ExpectOneResultPerTask(c.get(), jobs);
  // Drained: every group idle for idle_timeout_s is cancelled.
  ASSERT_TRUE(WaitFor([&] { return WorkerJobs().empty(); }, 30s)) << Slurp(dir_ / "coordinator.log");
  const std::string log = Slurp(dir_ / "coordinator.log");
  std::set<std::string> launched, cancelled;
  const std::regex launch_line("launcher: launch (\\d+) "), cancel_line("launcher: cancel (\\d+): idle");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), launch_line); it != std::sregex_iterator(); ++it) launched.insert((*it)[1]);
  for (auto it = std::sregex_iterator(log.begin(), log.end(), cancel_line); it != std::sregex_iterator(); ++it) cancelled.insert((*it)[1]);
  std::printf("launcher: %zu group(s) launched (at most %zu at once), %zu cancelled when idle; %.1f s\n", launched.size(), most,
              cancelled.size(), std::chrono::duration<double>(Clock::now() - t0).count());
  ASSERT_GE(launched.size(), 1u) << log;
  EXPECT_LE(most, 2u) << "launch.max_groups is 2";
  EXPECT_EQ(cancelled, launched) << log;
  for (const std::string& id : launched) EXPECT_EQ(ShowJob(id).state, "CANCELLED") << id;
  // `cadenza status` shows the launcher's decisions.
  const ShellRun status = Shell(std::string(CADENZA_CLI) + " status --coordinator 127.0.0.1:" + std::to_string(port) + " --token-file " +
                                (dir_ / "alice.token").string());
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("launcher slurm: 0 of at most 2 worker group(s)"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("launch " + *launched.begin() + " (1 ranks on 1 node(s), registers as slurm-" + *launched.begin()),
            std::string::npos) << status.output;
  EXPECT_NE(status.output.find("cancel " + *launched.begin() + ": idle for"), std::string::npos) << status.output;
}

// 5. The coordinator as a Slurm job (slurm/coordinator.sbatch), requeued mid-sweep: it restarts on its database,
// finds its worker groups by name, and the sweep completes with exactly one result per task.
TEST_F(SlurmTest, RequeuedCoordinatorJobFinishesTheSweepOnItsDatabase) {
  const auto t0 = Clock::now();
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const fs::path config = LauncherConfig("127.0.0.1:0", "127.0.0.1:" + std::to_string(port));
  setenv("CADENZA_STATE", (dir_ / "state").c_str(), 1);
  setenv("CADENZA_PORT", std::to_string(port).c_str(), 1);
  const std::string job = Sbatch("", "coordinator.sbatch", config.string(), "coordinator-%j.out");
  unsetenv("CADENZA_STATE");
  unsetenv("CADENZA_PORT");
  const fs::path log = dir_ / ("coordinator-" + job + ".out");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ / "state" / "address"); }, 30s)) << Slurp(log);
  EXPECT_NE(Slurp(dir_ / "state" / "address").find(":" + std::to_string(port)), std::string::npos);
  const std::vector<int64_t> jobs = SubmitSweep(port, 3, 60);
  auto c = Client(port);
  // Requeue once the first training result is in and work is still to do.
  ASSERT_TRUE(WaitFor([&] {
    v1::QueryResultsRequest q;
    q.set_kind(v1::TASK_KIND_TRAIN);
    v1::QueryResultsResponse rows;
    return c->QueryResults(q, &rows).ok() && rows.rows_size() >= 1;
  }, 120s, 300ms)) << Slurp(log);
  const ShellRun rq = Shell("scontrol requeue " + job);
  ASSERT_EQ(rq.exit_code, 0) << rq.output;
  const auto requeued = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return Slurp(log).find("start 2 ") != std::string::npos && Slurp(log).find("tasks recovered", Slurp(log).find("start 2 ")) != std::string::npos; }, 60s))
      << Slurp(log);
  const double back = std::chrono::duration<double>(Clock::now() - requeued).count();
  ASSERT_TRUE(WaitFor([&] {
    v1::ListJobsRequest r;
    r.set_active_only(true);
    v1::ListJobsResponse active;
    return c->ListJobs(r, &active).ok() && active.jobs_size() == 0;
  }, 180s, 500ms)) << Slurp(log);
  ExpectOneResultPerTask(c.get(), jobs);
  const SlurmJob j = ShowJob(job);
  std::printf("coordinator job requeued mid-sweep: listening again after %.1f s, sweep done in %.1f s (restarts %d)\n", back,
              std::chrono::duration<double>(Clock::now() - t0).count(), j.restarts);
  EXPECT_EQ(j.state, "RUNNING");
  EXPECT_EQ(j.restarts, 1);
  const std::string text = Slurp(log);
  EXPECT_NE(text.find("3 jobs"), std::string::npos) << "the restart recovered the sweep's jobs:\n" << text;
  Shell("scancel " + job);
}

}  // namespace
}  // namespace cadenza
