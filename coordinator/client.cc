// CoordinatorClient: channel setup (plaintext or TLS), token metadata, deadlines, Status mapping.
#include "coordinator/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <unordered_map>

#include "coordinator/convert.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace cadenza::coord {

StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path + ": cannot read the token file");
  std::string line;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t e = line.find_last_not_of(" \t\r");
    std::string token = line.substr(b, e - b + 1);
    // A tokens file line "<token> <user>" also works: the token is the first field.
    const size_t sp = token.find_first_of(" \t");
    return sp == std::string::npos ? token : token.substr(0, sp);
  }
  return InvalidArgument(path + ": no token in the file");
}

std::unique_ptr<CoordinatorClient> CoordinatorClient::Connect(const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Each client its own connection (gRPC would otherwise share one between equal channels of the process).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Reconnect soon after a coordinator restart (the default backoff grows to 2 minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.tls_root_cert_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_cert_pem;
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  }
  auto channel = grpc::CreateCustomChannel(options.target, creds, args);
  return std::unique_ptr<CoordinatorClient>(new CoordinatorClient(options, std::move(channel)));
}

CoordinatorClient::CoordinatorClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      worker_(v1::WorkerService::NewStub(channel_)),
      client_(v1::ClientService::NewStub(channel_)) {}

void CoordinatorClient::Prepare(grpc::ClientContext* ctx, bool with_deadline) const {
  ctx->AddMetadata("authorization", "Bearer " + options_.token);
  if (with_deadline) ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.deadline_ms));
}

Status CoordinatorClient::Done(const grpc::Status& s) const {
  Status st = FromGrpc(s);
  if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded) {
    return st.WithContext("coordinator " + options_.target);
  }
  return st;
}

Status CoordinatorClient::WaitHealthy(int64_t timeout_ms) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  grpc::Status last;
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(std::max<int64_t>(100, std::min<int64_t>(timeout_ms, 1000))));
    ctx.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    last = stub->Check(&ctx, req, &resp);
    if (last.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) return Status::Ok();
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Unavailable("coordinator " + options_.target + " is not serving: " + last.error_message());
}

#define CADENZA_UNARY(Stub, Method, Req, Resp)          \
  Status CoordinatorClient::Method(const Req& req, Resp* resp) { \
    grpc::ClientContext ctx;                            \
    Prepare(&ctx);                                      \
    return Done(Stub->Method(&ctx, req, resp));         \
  }

CADENZA_UNARY(worker_, RegisterWorkerGroup, v1::RegisterWorkerGroupRequest, v1::RegisterWorkerGroupResponse)
CADENZA_UNARY(worker_, Heartbeat, v1::HeartbeatRequest, v1::HeartbeatResponse)
CADENZA_UNARY(worker_, LeaseTask, v1::LeaseTaskRequest, v1::LeaseTaskResponse)
CADENZA_UNARY(worker_, ReportProgress, v1::ReportProgressRequest, v1::ReportProgressResponse)
CADENZA_UNARY(worker_, CompleteTask, v1::CompleteTaskRequest, v1::CompleteTaskResponse)
CADENZA_UNARY(worker_, FailTask, v1::FailTaskRequest, v1::FailTaskResponse)
CADENZA_UNARY(client_, SubmitExperiment, v1::SubmitExperimentRequest, v1::SubmitResponse)
CADENZA_UNARY(client_, SubmitSweep, v1::SubmitSweepRequest, v1::SubmitResponse)
CADENZA_UNARY(client_, ListJobs, v1::ListJobsRequest, v1::ListJobsResponse)
CADENZA_UNARY(client_, QueryResults, v1::QueryResultsRequest, v1::QueryResultsResponse)
CADENZA_UNARY(client_, AggregateResults, v1::AggregateResultsRequest, v1::AggregateResultsResponse)
CADENZA_UNARY(client_, CancelJob, v1::CancelJobRequest, v1::CancelJobResponse)
CADENZA_UNARY(client_, Resubmit, v1::ResubmitRequest, v1::SubmitResponse)

Status CoordinatorClient::GetJob(int64_t job_id, v1::Job* resp) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  return Done(client_->GetJob(&ctx, req, resp));
}

Status CoordinatorClient::CancelJob(int64_t job_id, v1::CancelJobResponse* resp) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::CancelJobRequest req;
  req.set_job_id(job_id);
  return Done(client_->CancelJob(&ctx, req, resp));
}

Status CoordinatorClient::WatchJob(int64_t job_id, const std::function<bool(const v1::Job&)>& on_update) {
  grpc::ClientContext ctx;
  Prepare(&ctx, false);  // a stream lives as long as the job runs
  v1::WatchJobRequest req;
  req.set_job_id(job_id);
  auto reader = client_->WatchJob(&ctx, req);
  v1::Job job;
  while (reader->Read(&job)) {
    if (!on_update(job)) {
      ctx.TryCancel();
      reader->Finish();
      return Status::Ok();
    }
  }
  return Done(reader->Finish());
}

namespace {

// The agent's seam (coordinator/worker_client.h) over the real client: each call forwarded as it is.
class GrpcWorkerClient : public WorkerClient {
 public:
  explicit GrpcWorkerClient(std::unique_ptr<CoordinatorClient> c) : c_(std::move(c)) {}
  Status WaitHealthy(int64_t timeout_ms) override { return c_->WaitHealthy(timeout_ms); }
  Status RegisterWorkerGroup(const v1::RegisterWorkerGroupRequest& req, v1::RegisterWorkerGroupResponse* resp) override {
    return c_->RegisterWorkerGroup(req, resp);
  }
  Status Heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp) override { return c_->Heartbeat(req, resp); }
  Status LeaseTask(const v1::LeaseTaskRequest& req, v1::LeaseTaskResponse* resp) override { return c_->LeaseTask(req, resp); }
  Status ReportProgress(const v1::ReportProgressRequest& req, v1::ReportProgressResponse* resp) override {
    return c_->ReportProgress(req, resp);
  }
  Status CompleteTask(const v1::CompleteTaskRequest& req, v1::CompleteTaskResponse* resp) override {
    return c_->CompleteTask(req, resp);
  }
  Status FailTask(const v1::FailTaskRequest& req, v1::FailTaskResponse* resp) override { return c_->FailTask(req, resp); }

 private:
  std::unique_ptr<CoordinatorClient> c_;
};

}  // namespace

void ExpandCompactResults(v1::QueryResultsResponse* page) {
  if (page->jobs_size() == 0) return;
  std::unordered_map<int64_t, const v1::ResultRow*> job_of;
  for (const v1::ResultRow& j : page->jobs()) job_of.emplace(j.job_id(), &j);
  for (v1::ResultRow& r : *page->mutable_rows()) {
    // proto3 MergeFrom copies only what is set: the job entry's fields, none of the row's own.
    if (auto it = job_of.find(r.job_id()); it != job_of.end()) r.MergeFrom(*it->second);
  }
  page->clear_jobs();
}

std::unique_ptr<WorkerClient> ConnectWorkerClient(const ClientOptions& options) {
  return std::make_unique<GrpcWorkerClient>(CoordinatorClient::Connect(options));
}

}  // namespace cadenza::coord
