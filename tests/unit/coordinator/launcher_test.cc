// The launch policy (pure: time, waiting tasks, groups) and SlurmLauncher's sbatch/squeue/scancel lines against a
// fake process runner; the config keys `launcher` and `launch.*`.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/config.h"
#include "coordinator/launch_policy.h"
#include "coordinator/launcher.h"

namespace cadenza::coord {
namespace {

LaunchOptions Options() {
  LaunchOptions o;
  o.launcher = "slurm";
  o.max_groups = 2;
  o.ranks_per_group = 2;
  o.idle_timeout_ms = 10000;
  o.start_timeout_ms = 60000;
  return o;
}

GroupView View(const std::string& id, GroupState state, bool registered, int leases) {
  return GroupView{LaunchedGroup{id, "slurm-" + id, state, ""}, registered, leases};
}

int Launches(const std::vector<LaunchDecision>& d) {
  int n = 0;
  for (const auto& x : d) n += x.kind == LaunchDecision::kLaunch;
  return n;
}
std::vector<std::string> Cancels(const std::vector<LaunchDecision>& d) {
  std::vector<std::string> ids;
  for (const auto& x : d) {
    if (x.kind == LaunchDecision::kCancel) ids.push_back(x.id);
  }
  return ids;
}

TEST(LaunchPolicyTest, NothingWaitingLaunchesNothing) {
  LaunchPolicy p(Options());
  EXPECT_TRUE(p.Decide(0, 0, {}).empty());
}

TEST(LaunchPolicyTest, LaunchesOneGroupPerTickWhileTasksWaitUpToMaxGroups) {
  LaunchPolicy p(Options());
  auto d = p.Decide(0, 5, {});
  ASSERT_EQ(Launches(d), 1);
  EXPECT_EQ(d[0].reason, "5 tasks waiting, 0 of 2 groups (launch.max_groups)");
  // The first group is queued: it will take 2 of the 5 waiting tasks; 3 still need another group.
  EXPECT_EQ(Launches(p.Decide(1000, 5, {View("11", GroupState::kQueued, false, 0)})), 1);
  // Two groups alive: max_groups reached, whatever waits.
  EXPECT_EQ(Launches(p.Decide(2000, 50, {View("11", GroupState::kRunning, true, 1), View("12", GroupState::kQueued, false, 0)})), 0);
}

TEST(LaunchPolicyTest, WaitingTasksAStartingGroupWillTakeLaunchNothingMore) {
  LaunchPolicy p(Options());
  EXPECT_EQ(Launches(p.Decide(0, 2, {View("11", GroupState::kQueued, false, 0)})), 0);
  EXPECT_EQ(Launches(p.Decide(0, 2, {View("11", GroupState::kRunning, false, 0)})), 0);
  // A busy group frees no ranks: the waiting tasks need a new one.
  EXPECT_EQ(Launches(p.Decide(0, 2, {View("11", GroupState::kRunning, true, 2)})), 1);
}

TEST(LaunchPolicyTest, CancelsAGroupIdleForTheTimeoutOnce) {
  LaunchPolicy p(Options());
  EXPECT_TRUE(Cancels(p.Decide(0, 0, {View("11", GroupState::kRunning, true, 1)})).empty());
  EXPECT_TRUE(Cancels(p.Decide(5000, 0, {View("11", GroupState::kRunning, true, 0)})).empty());  // idle since 0
  EXPECT_TRUE(Cancels(p.Decide(9999, 0, {View("11", GroupState::kRunning, true, 0)})).empty());
  auto d = p.Decide(10000, 0, {View("11", GroupState::kRunning, true, 0)});
  ASSERT_EQ(Cancels(d), std::vector<std::string>{"11"});
  EXPECT_EQ(d[0].reason, "idle for 10 s (launch.idle_timeout_s), 0 tasks waiting");
  // Still listed while it stops: not cancelled twice, and not counted against max_groups.
  EXPECT_TRUE(Cancels(p.Decide(11000, 0, {View("11", GroupState::kRunning, true, 0)})).empty());
  EXPECT_EQ(Launches(p.Decide(11000, 9, {View("11", GroupState::kRunning, true, 0), View("12", GroupState::kRunning, true, 2)})), 1);
}

TEST(LaunchPolicyTest, WorkResetsTheIdleClock) {
  LaunchPolicy p(Options());
  p.Decide(0, 0, {View("11", GroupState::kRunning, true, 0)});
  p.Decide(8000, 0, {View("11", GroupState::kRunning, true, 1)});  // busy at 8 s
  EXPECT_TRUE(Cancels(p.Decide(17000, 0, {View("11", GroupState::kRunning, true, 0)})).empty());
  EXPECT_EQ(Cancels(p.Decide(18000, 0, {View("11", GroupState::kRunning, true, 0)})), std::vector<std::string>{"11"});
}

TEST(LaunchPolicyTest, QueuedGroupsAreNeverIdleButARunningOneThatNeverRegistersIsCancelled) {
  LaunchPolicy p(Options());
  EXPECT_TRUE(Cancels(p.Decide(0, 0, {View("11", GroupState::kQueued, false, 0)})).empty());
  EXPECT_TRUE(Cancels(p.Decide(600000, 0, {View("11", GroupState::kQueued, false, 0)})).empty());  // Slurm's queue: wait
  EXPECT_TRUE(Cancels(p.Decide(600001, 0, {View("11", GroupState::kRunning, false, 0)})).empty());
  auto d = p.Decide(660001, 0, {View("11", GroupState::kRunning, false, 0)});
  ASSERT_EQ(Cancels(d), std::vector<std::string>{"11"});
  EXPECT_NE(d[0].reason.find("without registering"), std::string::npos) << d[0].reason;
}

// ---- SlurmLauncher against a fake runner ----

class FakeRunner : public ProcessRunner {
 public:
  std::vector<std::vector<std::string>>* calls;
  std::deque<ProcessResult>* answers;
  StatusOr<ProcessResult> Run(const std::vector<std::string>& argv) override {
    calls->push_back(argv);
    if (answers->empty()) return NotFound(argv[0] + ": cannot run it");
    ProcessResult r = answers->front();
    answers->pop_front();
    return r;
  }
};

struct SlurmFixture {
  std::vector<std::vector<std::string>> calls;
  std::deque<ProcessResult> answers;
  std::unique_ptr<GroupLauncher> launcher;
  explicit SlurmFixture(SlurmLauncherOptions o = {}) {
    auto r = std::make_unique<FakeRunner>();
    r->calls = &calls;
    r->answers = &answers;
    launcher = MakeSlurmLauncher(o, std::move(r));
  }
};

TEST(SlurmLauncherTest, LaunchSubmitsTheWorkerScriptWithTheGroupsShape) {
  SlurmLauncherOptions o;
  o.script = "/repo/slurm/worker.sbatch";
  o.job_name = "cadenza-worker-lab";
  o.sbatch_args = {"--partition=gpu", "--account=lab", "--qos=normal", "--time=04:00:00", "--gres=gpu:2"};
  o.output = "/shared/launch/%x-%j.out";
  o.worker = "/opt/cadenza/bin/cadenza-worker";
  SlurmFixture f(o);
  f.answers.push_back({0, "sbatch: warning: something\n4242;cluster\n"});
  GroupSpec spec;
  spec.nodes = 2;
  spec.ranks = 4;
  spec.threads_per_rank = 3;
  spec.coordinator = "head:7070";
  spec.token_file = "/shared/launch/worker.token";
  spec.worker_args = {"--bars", "8"};
  auto g = f.launcher->Launch(spec);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->id, "4242");
  EXPECT_EQ(g->worker_name, "slurm-4242");
  const std::vector<std::string> want = {"sbatch", "--parsable", "--job-name=cadenza-worker-lab", "--nodes=2", "--ntasks=4",
                                         "--cpus-per-task=3", "--output=/shared/launch/%x-%j.out",
                                         "--export=ALL,CADENZA_WORKER=/opt/cadenza/bin/cadenza-worker", "--partition=gpu",
                                         "--account=lab", "--qos=normal", "--time=04:00:00", "--gres=gpu:2",
                                         "/repo/slurm/worker.sbatch", "head:7070", "/shared/launch/worker.token", "--bars", "8"};
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_EQ(f.calls[0], want);
}

TEST(SlurmLauncherTest, SbatchErrorsAndMissingSlurmAreReported) {
  SlurmFixture f;
  f.answers.push_back({1, "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"});
  auto g = f.launcher->Launch(GroupSpec{});
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("Invalid account"), std::string::npos) << g.status().message();
  auto none = f.launcher->Launch(GroupSpec{});  // no answer queued: the command does not exist
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
}

TEST(SlurmLauncherTest, ListReadsSqueueAndCancelRunsScancel) {
  SlurmFixture f;
  f.answers.push_back({0, "17|RUNNING|None\n18|PENDING|Resources\n19|COMPLETING|None\n"});
  auto groups = f.launcher->List();
  ASSERT_TRUE(groups.ok()) << groups.status().message();
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].id, "17");
  EXPECT_EQ((*groups)[0].state, GroupState::kRunning);
  EXPECT_EQ((*groups)[1].id, "18");
  EXPECT_EQ((*groups)[1].state, GroupState::kQueued);
  EXPECT_EQ((*groups)[1].detail, "PENDING (Resources)");
  EXPECT_EQ(f.calls[0], (std::vector<std::string>{"squeue", "--noheader", "--me", "--name=cadenza-worker", "--format=%i|%T|%r"}));
  f.answers.push_back({0, ""});
  EXPECT_TRUE(f.launcher->Cancel("17").ok());
  EXPECT_EQ(f.calls[1], (std::vector<std::string>{"scancel", "17"}));
  f.answers.push_back({1, "squeue: error: Unable to contact slurm controller (connect failure)\n"});
  auto down = f.launcher->List();
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.status().message().find("Unable to contact slurm controller"), std::string::npos);
}

TEST(LauncherConfigTest, DefaultIsNoneAndKeysAreValidated) {
  auto d = ParseCoordinatorConfig("listen: 127.0.0.1:7070\n", "c.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->launch.launcher, "none");
  auto c = ParseCoordinatorConfig(
      "launcher: slurm\nlaunch:\n  max_groups: 3\n  ranks_per_group: 4\n  nodes_per_group: 2\n  idle_timeout_s: 90\n"
      "  slurm: {script: s.sbatch, job_name: w, sbatch_args: [--account=lab, --partition=cpu]}\n", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->launch.launcher, "slurm");
  EXPECT_EQ(c->launch.max_groups, 3);
  EXPECT_EQ(c->launch.ranks_per_group, 4);
  EXPECT_EQ(c->launch.idle_timeout_ms, 90000);
  EXPECT_EQ(c->launch.sbatch_args, (std::vector<std::string>{"--account=lab", "--partition=cpu"}));
  auto again = ParseCoordinatorConfig(c->ToYaml(), "round-trip.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << c->ToYaml();
  EXPECT_EQ(again->launch.launcher, "slurm");
  auto bad = ParseCoordinatorConfig("launcher: kubernetes\n", "c.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "c.yaml: launcher: expected none, local or slurm, found 'kubernetes'");
  auto typo = ParseCoordinatorConfig("launch: {max_grups: 2}\n", "c.yaml");
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().message().rfind("c.yaml: launch.max_grups: unknown key (did you mean launch.max_groups?; expected one of: ", 0), 0u)
      << typo.status().message();
  auto fewer = ParseCoordinatorConfig("launch: {ranks_per_group: 1, nodes_per_group: 2}\n", "c.yaml");
  ASSERT_FALSE(fewer.ok());
  EXPECT_NE(fewer.status().message().find("launch.ranks_per_group"), std::string::npos);
}

TEST(LauncherTokenTest, TheLaunchingUsersTokenFromTheTokensFile) {
  const std::string path = ::testing::TempDir() + "/launcher_tokens.txt";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("# tokens\nabcdefgh1 alice\nabcdefgh2 bob\nabcdefgh3 bob worker\nabcdefgh4 carol admin\nabcdefgh5 dave\n", f);
  std::fclose(f);
  EXPECT_EQ(*TokenOfUser(path, "bob"), "abcdefgh3");    // bob's worker token, not his user token
  EXPECT_EQ(*TokenOfUser(path, "carol"), "abcdefgh4");  // an admin token serves too
  EXPECT_EQ(*TokenOfUser(path, ""), "abcdefgh3");       // anyone's first worker token
  auto none = TokenOfUser(path, "alice");               // only a user token: a group could not register
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no worker (or admin) token of user 'alice'"), std::string::npos) << none.status().message();
}

}  // namespace
}  // namespace cadenza::coord
