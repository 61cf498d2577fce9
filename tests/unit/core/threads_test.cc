// Default thread counts: what this process may use, shared by the ranks on its node (core/threads.h).
#include "core/threads.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>

namespace cadenza {
namespace {

// Sets (or, given nullopt, removes) an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value->c_str(), 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

int AffinityCpus() {
  cpu_set_t set;
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  return CPU_COUNT(&set);
}

TEST(ThreadsTest, UsableCpusFollowTheAffinityMask) {
  const int usable = UsableCpus();
  EXPECT_GE(usable, 1);
  EXPECT_LE(usable, AffinityCpus());
  // Narrowed to one CPU (as taskset or a bound MPI rank would), one CPU is usable.
  cpu_set_t saved, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &saved)) {
      CPU_SET(c, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  EXPECT_EQ(UsableCpus(), 1);
  EXPECT_EQ(DefaultThreads(), 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

TEST(ThreadsTest, LocalRanksShareTheNodeAndSlurmCpusPerTaskWin) {
  const int usable = UsableCpus();
  ScopedEnv no_slurm("SLURM_CPUS_PER_TASK", std::nullopt);  // the test may itself run inside a Slurm job
  {
    ScopedEnv ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
    EXPECT_EQ(LocalRanks(), 1);
    EXPECT_EQ(DefaultThreads(), usable);
  }
  {
    ScopedEnv ranks("OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(2 * usable));
    EXPECT_EQ(LocalRanks(), 2 * usable);
    EXPECT_EQ(DefaultThreads(), 1);  // never 0
  }
  {
    ScopedEnv ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
    ScopedEnv per_task("SLURM_CPUS_PER_TASK", "1");
    EXPECT_EQ(DefaultThreads(), 1);
  }
  {
    ScopedEnv ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
    ScopedEnv per_task("SLURM_CPUS_PER_TASK", std::to_string(usable + 7));  // more than this process may use
    EXPECT_EQ(DefaultThreads(), usable);
  }
}

// `cadenza generate --threads 0` beside busy processes: a CPU another process keeps 60% busy is not counted.
TEST(ThreadsTest, ThreadsBesideBusyCpusLeaveTheCpusOthersKeepBusy) {
  EXPECT_EQ(ThreadsBesideBusyCpus(2, 2, 0.0), 2);
  EXPECT_EQ(ThreadsBesideBusyCpus(2, 2, 0.55), 2);  // half a core: both threads still pay
  EXPECT_EQ(ThreadsBesideBusyCpus(2, 2, 0.6), 1);
  EXPECT_EQ(ThreadsBesideBusyCpus(2, 2, 1.0), 1);   // a busy loop on the other core
  EXPECT_EQ(ThreadsBesideBusyCpus(2, 2, 5.0), 1);   // never 0
  EXPECT_EQ(ThreadsBesideBusyCpus(4, 64, 40.0), 4);  // a big node with spare CPUs: the process's own share
  EXPECT_EQ(ThreadsBesideBusyCpus(8, 16, 10.7), 5);
}

// A process spinning beside this one shows as busy (at least 0.3 of a CPU, allowing for a loaded test machine).
TEST(ThreadsTest, CpusBusyWithOthersSeesAnotherProcessSpinning) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) {
    }
    _exit(0);
  }
  const double busy = CpusBusyWithOthers(0.2);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_GT(busy, 0.3);
  EXPECT_LE(busy, sysconf(_SC_NPROCESSORS_ONLN) + 0.01);
}

}  // namespace
}  // namespace cadenza
