// The worker agent (`cadenza-worker --coordinator HOST:PORT`): one worker group of MPI ranks serving a coordinator.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "coordinator/client.h"
#include "coordinator/worker_client.h"
#include "worker/communicator.h"
#include "worker/task_runners.h"

namespace cadenza {

// Exit code of an agent stopped by SIGTERM/SIGUSR1/SIGINT after checkpointing and handing its tasks back
// (docs/worker.md). Others: 0 idle for --max-idle, 1 error, 2 bad usage, 75 a collective timed out.
inline constexpr int kExitStoppedBySignal = 4;

struct AgentOptions {
  coord::ClientOptions client;        // coordinator address, token, TLS
  std::string name;                   // worker group name (default: $SLURM_JOB_ID or host:pid)
  int threads = 1;                    // intra-op threads per rank
  double bucket_mb = 4;               // gradient buckets of training tasks
  double timeout = 60;                // seconds a training collective may wait (exit 75 after)
  SampleOptions sample;               // how generate tasks sample
  int eval_jobs = 1;                  // threads of an evaluate/aggregate task
  double max_idle_seconds = 0;        // exit 0 after this long with no task on any rank (0: serve forever)
  int64_t connect_timeout_ms = 60000; // rank 0 waits this long for the coordinator at start
  bool quiet = false;
};

// Runs the agent on every rank of `comm` until a signal (`stop`, set by the caller's handler; `signal_number` says
// which), --max-idle, or an error. Every rank calls it; only coordinator calls and no collective happen off the
// main thread. Each rank connects its own gRPC client to options.client.
int RunAgent(const AgentOptions& options, Communicator& comm, std::atomic<bool>* stop, std::atomic<int>* signal_number);
// The same over `client` (options.client unused): tests pass a fake coordinator, shared by the ranks of a thread
// world (worker/test_communicators.h).
int RunAgent(const AgentOptions& options, Communicator& comm, coord::WorkerClient& client, std::atomic<bool>* stop,
             std::atomic<int>* signal_number);

}  // namespace cadenza
