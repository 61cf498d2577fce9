// CoordinatorClient: the typed gRPC client of the coordinator for `cadenza` commands and `cadenza-worker` (no torch);
// ConnectWorkerClient gives the worker agent the same client behind its WorkerClient seam.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cadenza/v1/client.grpc.pb.h"
#include "cadenza/v1/worker.grpc.pb.h"
#include "coordinator/worker_client.h"
#include "core/status.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace cadenza::coord {

struct ClientOptions {
  std::string target = "127.0.0.1:7070";  // host:port of the coordinator
  std::string token;                      // sent as `authorization: Bearer <token>` on every call
  std::string tls_root_cert_pem;          // PEM text of the CA (or self-signed) certificate; empty = plaintext
  std::string tls_server_name;            // override of the name checked against the certificate (tests)
  int64_t deadline_ms = 10000;            // per unary call
  int max_message_bytes = 16 << 20;       // largest response accepted
};

// Reads a token file (the first non-empty line, surrounding blanks removed). Error names the file.
StatusOr<std::string> ReadTokenFile(const std::string& path);

// Every call returns the RPC's status as a cadenza Status: UNAUTHENTICATED -> kUnauthenticated, PERMISSION_DENIED ->
// kPermissionDenied, INVALID_ARGUMENT -> kInvalidArgument (message names the field), NOT_FOUND, ABORTED (a stale
// task attempt), UNAVAILABLE (coordinator unreachable), DEADLINE_EXCEEDED. Thread-safe: one client may be shared.
class CoordinatorClient {
 public:
  static std::unique_ptr<CoordinatorClient> Connect(const ClientOptions& options);

  // grpc.health.v1 Check of the whole server; waits up to `timeout_ms` for the server to come up.
  Status WaitHealthy(int64_t timeout_ms);

  // ---- WorkerService (cadenza-worker) ----
  Status RegisterWorkerGroup(const v1::RegisterWorkerGroupRequest& req, v1::RegisterWorkerGroupResponse* resp);
  Status Heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp);
  Status LeaseTask(const v1::LeaseTaskRequest& req, v1::LeaseTaskResponse* resp);
  Status ReportProgress(const v1::ReportProgressRequest& req, v1::ReportProgressResponse* resp);
  Status CompleteTask(const v1::CompleteTaskRequest& req, v1::CompleteTaskResponse* resp);
  Status FailTask(const v1::FailTaskRequest& req, v1::FailTaskResponse* resp);

  // ---- ClientService (cadenza submit/status/results/cancel) ----
  Status SubmitExperiment(const v1::SubmitExperimentRequest& req, v1::SubmitResponse* resp);
  Status SubmitSweep(const v1::SubmitSweepRequest& req, v1::SubmitResponse* resp);
  Status GetJob(int64_t job_id, v1::Job* resp);
  Status ListJobs(const v1::ListJobsRequest& req, v1::ListJobsResponse* resp);
  Status CancelJob(int64_t job_id, v1::CancelJobResponse* resp);
  Status CancelJob(const v1::CancelJobRequest& req, v1::CancelJobResponse* resp);  // by job or by sweep
  Status Resubmit(const v1::ResubmitRequest& req, v1::SubmitResponse* resp);
  // Calls `on_update` with the job now and after every change until it finishes or `on_update` returns false.
  Status WatchJob(int64_t job_id, const std::function<bool(const v1::Job&)>& on_update);
  Status QueryResults(const v1::QueryResultsRequest& req, v1::QueryResultsResponse* resp);
  Status AggregateResults(const v1::AggregateResultsRequest& req, v1::AggregateResultsResponse* resp);

  v1::WorkerService::Stub* worker_stub() { return worker_.get(); }  // for asynchronous use (bench)
  v1::ClientService::Stub* client_stub() { return client_.get(); }
  // Sets the token metadata and the deadline on a context for a direct stub call.
  void Prepare(grpc::ClientContext* ctx, bool with_deadline = true) const;

 private:
  CoordinatorClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel);
  Status Done(const grpc::Status& s) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> worker_;
  std::unique_ptr<v1::ClientService::Stub> client_;
};

// A compact QueryResults page (request.compact) made whole: each row gets its job's fields from `jobs`, which is
// then emptied. A page that is not compact is left as it is.
void ExpandCompactResults(v1::QueryResultsResponse* page);

// The worker agent's view of a coordinator (coordinator/worker_client.h): a CoordinatorClient behind the interface.
std::unique_ptr<WorkerClient> ConnectWorkerClient(const ClientOptions& options);

}  // namespace cadenza::coord
