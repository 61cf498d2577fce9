#include "core/threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace cadenza {
namespace {

// "max 100000" (no quota) or "QUOTA PERIOD" in microseconds; 0 when there is no quota or no cgroup v2.
int CgroupCpuQuota() {
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long long period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  const long long q = std::atoll(quota.c_str());
  return q > 0 ? static_cast<int>((q + period - 1) / period) : 0;
}

}  // namespace

int UsableCpus() {
  int cpus = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (const int quota = CgroupCpuQuota(); quota > 0) cpus = std::min(cpus, quota);
  return std::max(1, cpus);
}

int LocalRanks() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}) {
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  }
  return 1;
}

int DefaultThreads() {
  const int cpus = UsableCpus();
  // Slurm says what each task was given; otherwise the ranks on this node share what this process may use (a rank
  // bound to one core sees one CPU and gets one thread).
  if (const char* s = std::getenv("SLURM_CPUS_PER_TASK")) {
    const int per_task = std::atoi(s);
    if (per_task > 0) return std::min(per_task, cpus);
  }
  return std::max(1, cpus / LocalRanks());
}

void ReexecWithPassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "note: could not restart with OMP_WAIT_POLICY=passive; idle OpenMP threads will spin\n");
}

}  // namespace cadenza
