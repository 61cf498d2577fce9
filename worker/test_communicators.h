// Communicators for tests: N ranks on threads of one process, and a wrapper that injects a rank fault.
// Production code creates neither except the fault wrapper, which cadenza-worker applies only when
// CADENZA_WORKER_FAULT is set (the distributed tests' way to kill, stall or signal one rank).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "worker/communicator.h"

namespace cadenza {

// A world of `ranks` communicators sharing memory, one per thread (rank i = element i). Collectives complete
// when every rank has started them, in the same order on every rank, as under MPI; sums are added in rank order,
// so results do not depend on thread timing. Starting a different collective (kind or size) than the other ranks
// at the same position is a bug in the caller and aborts with both descriptions.
std::vector<std::unique_ptr<Communicator>> MakeThreadWorld(int ranks);

// At the start of step `step` (when the reducer's heartbeat says so), rank `rank` exits with code 3 ("exit"),
// sleeps for an hour ("stall") or sends itself SIGTERM ("term", as Slurm does before a time limit).
struct FaultPlan {
  int rank = -1;
  int64_t step = -1;
  std::string mode;
};
// "rank:step:mode", e.g. "1:5:stall".
StatusOr<FaultPlan> ParseFaultPlan(const std::string& text);
std::unique_ptr<Communicator> WithFault(std::unique_ptr<Communicator> inner, FaultPlan plan);

}  // namespace cadenza
