// WorkerClient: the worker side of cadenza.v1.WorkerService as the agent speaks it, behind an interface: the real
// gRPC client (ConnectWorkerClient in coordinator/client.h, a thin adapter over CoordinatorClient) or a test's fake.
#pragma once

#include <cstdint>

#include "cadenza/v1/worker.pb.h"
#include "core/status.h"

namespace cadenza::coord {

// Every call returns the RPC's status as a cadenza Status, as CoordinatorClient documents (NOT_FOUND: the group is
// unknown to the coordinator; UNAVAILABLE / DEADLINE_EXCEEDED: transient). Thread-safe: every thread of a rank (its
// main loop and its heartbeats) shares one.
class WorkerClient {
 public:
  virtual ~WorkerClient() = default;
  // Waits up to `timeout_ms` for the coordinator to answer its health check.
  virtual Status WaitHealthy(int64_t timeout_ms) = 0;
  virtual Status RegisterWorkerGroup(const v1::RegisterWorkerGroupRequest& req, v1::RegisterWorkerGroupResponse* resp) = 0;
  virtual Status Heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp) = 0;
  virtual Status LeaseTask(const v1::LeaseTaskRequest& req, v1::LeaseTaskResponse* resp) = 0;
  virtual Status ReportProgress(const v1::ReportProgressRequest& req, v1::ReportProgressResponse* resp) = 0;
  virtual Status CompleteTask(const v1::CompleteTaskRequest& req, v1::CompleteTaskResponse* resp) = 0;
  virtual Status FailTask(const v1::FailTaskRequest& req, v1::FailTaskResponse* resp) = 0;
};

}  // namespace cadenza::coord
