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

// libgomp reads OMP_WAIT_POLICY once, before main() runs; its default spins idle threads for 300,000 iterations,
// which on a node whose other cores are busy steals them from the work. When the variable is unset, this sets it
// to passive and executes the program again (same pid, arguments and environment), so every start sleeps idle
// threads; an explicit OMP_WAIT_POLICY is kept. Call first in main(). Returns only when no re-exec was needed or
// it failed.
void ReexecWithPassiveOpenMpWait(char** argv);

}  // namespace cadenza
