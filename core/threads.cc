#include "core/threads.h"

#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
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

namespace {

// Busy (user + system + irq + softirq + steal, and nice unless `skip_nice`) and idle (idle + iowait, and nice when
// skipped) seconds of every CPU, from the first line of /proc/stat; false when it cannot be read.
bool MachineCpuSeconds(bool skip_nice, double* busy, double* idle) {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, system = 0, idle_t = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle_t >> iowait >> irq >> softirq >> steal) || cpu != "cpu") return false;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  *busy = (user + (skip_nice ? 0 : nice) + system + irq + softirq + steal) / hz;
  *idle = (idle_t + iowait + (skip_nice ? nice : 0)) / hz;
  return true;
}

double OwnCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

}  // namespace

double CpusBusyWithOthers(double window_s) {
  double busy0 = 0, idle0 = 0, busy1 = 0, idle1 = 0;
  // A process of raised nice value (a build at nice 19) yields its CPU to one at 0: its time is not "busy" for us.
  errno = 0;
  const bool skip_nice = getpriority(PRIO_PROCESS, 0) <= 0 && errno == 0;
  const double own0 = OwnCpuSeconds();
  if (!MachineCpuSeconds(skip_nice, &busy0, &idle0)) return 0;
  std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
  if (!MachineCpuSeconds(skip_nice, &busy1, &idle1)) return 0;
  const double total = (busy1 - busy0) + (idle1 - idle0);  // CPU-seconds that passed, on every CPU
  if (total <= 0) return 0;
  const double cpus = static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  // Busy share of the machine times its CPUs, less this process (its other threads may be working meanwhile).
  return std::max(0.0, (busy1 - busy0) / total * cpus - (OwnCpuSeconds() - own0) / window_s);
}

int ThreadsBesideBusyCpus(int default_threads, int online_cpus, double others_busy) {
  const int taken = static_cast<int>(std::floor(others_busy + 0.4));
  return std::max(1, std::min(default_threads, online_cpus - taken));
}

int ThreadsBesideOthers(double window_s) {
  const int wanted = DefaultThreads();
  if (wanted <= 1) return wanted;
  return ThreadsBesideBusyCpus(wanted, static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))), CpusBusyWithOthers(window_s));
}

void ReexecWithPassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "note: could not restart with OMP_WAIT_POLICY=passive; idle OpenMP threads will spin\n");
}

}  // namespace cadenza
