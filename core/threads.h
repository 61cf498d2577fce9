// Thread counts and the OpenMP wait policy of the LibTorch programs (docs/PERFORMANCE.md, "Threads").
#pragma once

namespace cadenza {

// CPUs this process may run on: its affinity mask (taskset, Slurm's and MPI's CPU binding) capped by a cgroup v2
// CPU quota (containers). At least 1.
int UsableCpus();

// Ranks of this job on this node (Open MPI, Slurm and MPICH variables); 1 outside MPI.
int LocalRanks();

// What `--threads 0` means: Slurm's CPUs per task when set, else the usable CPUs shared by the node's local ranks;
// at least 1.
int DefaultThreads();

// CPUs that other processes kept busy during `window_s` seconds from now: two readings of /proc/stat around a
// sleep, less this process's own CPU time; processes with a higher nice value than this one's 0 (which yield to it)
// do not count. 0 when /proc/stat cannot be read.
double CpusBusyWithOthers(double window_s);

// Threads for `default_threads` wanted on a machine of `online_cpus` where others keep `others_busy` CPUs busy: a
// CPU counts as taken once it is 60% busy (an OpenMP region waits for its slowest thread, and a thread sharing a core
// with a busy process is the slowest); at least 1, at most `default_threads`.
int ThreadsBesideBusyCpus(int default_threads, int online_cpus, double others_busy);

// What `--threads 0` means for a short burst of work such as `cadenza generate`: DefaultThreads() less the CPUs other
// processes keep busy, looked at for `window_s` (docs/PERFORMANCE.md, "Threads"). Long runs (training) keep
// DefaultThreads(): a glimpse at their start says little about hours of sharing.
int ThreadsBesideOthers(double window_s = 0.05);

// libgomp reads OMP_WAIT_POLICY once, before main() runs; its default spins idle threads for 300,000 iterations,
// which on a node whose other cores are busy steals them from the work. When the variable is unset, this sets it
// to passive and executes the program again (same pid, arguments and environment), so every start sleeps idle
// threads; an explicit OMP_WAIT_POLICY is kept. Call first in main(). Returns only when no re-exec was needed or
// it failed.
void ReexecWithPassiveOpenMpWait(char** argv);

}  // namespace cadenza
