// Default thread counts: what this process may use, shared by the ranks on its node (core/threads.h).
#include "core/threads.h"

#include <gtest/gtest.h>
#include <sched.h>

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

}  // namespace
}  // namespace cadenza
