// gRPC adapters for ClientService and WorkerService: authenticate, convert, call the plain classes, map Status.
#include "coordinator/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "cadenza/v1/client.grpc.pb.h"
#include "cadenza/v1/worker.grpc.pb.h"
#include "coordinator/convert.h"
#include "coordinator/sweep.h"

namespace cadenza::coord {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

// The caller behind the call's bearer token (metadata `authorization: Bearer <token>`), if its role may make the call
// `rpc`: UNAUTHENTICATED without a known token, PERMISSION_DENIED naming the role needed.
StatusOr<Principal> Caller(const TokenAuth& auth, grpc::ServerContextBase* ctx, Role role, const char* rpc) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  auto p = auth.Authenticate(it == md.end() ? std::string() : std::string(it->second.data(), it->second.size()));
  if (!p.ok()) return p.status();
  CADENZA_RETURN_IF_ERROR(RequireRole(*p, {role}, rpc));
  return p;
}

WorkerKey Key(const v1::WorkerRef& w) { return {w.group_id(), w.rank()}; }

// `caller` (a Principal) of a client RPC (user or admin token) or a worker RPC (worker or admin token).
#define CADENZA_AUTH_AS(caller, role, rpc)                         \
  auto caller##_or = Caller(*auth_, ctx, role, rpc);               \
  if (!caller##_or.ok()) return ToGrpc(caller##_or.status());      \
  const Principal& caller = *caller##_or
#define CADENZA_CLIENT_AUTH(caller, rpc) CADENZA_AUTH_AS(caller, Role::kUser, rpc)
#define CADENZA_WORKER_AUTH(caller, rpc) CADENZA_AUTH_AS(caller, Role::kWorker, rpc)

}  // namespace

// QueryResults is answered through gRPC's raw callback API, with the page's bytes serialized once per kept page
// (ResultPage::Encoded); the other client calls are synchronous (some stream or wait).
class ClientServiceImpl final : public v1::ClientService::WithRawCallbackMethod_QueryResults<v1::ClientService::Service> {
 public:
  ClientServiceImpl(const CoordinatorConfig* config, const TokenAuth* auth, Scheduler* scheduler, ResultQuery* results,
                    const std::atomic<bool>* stopping, const std::atomic<LaunchController*>* launcher)
      : config_(config), auth_(auth), scheduler_(scheduler), results_(results), stopping_(stopping), launcher_(launcher) {}

  grpc::Status SubmitExperiment(grpc::ServerContext* ctx, const v1::SubmitExperimentRequest* req, v1::SubmitResponse* resp) override {
    CADENZA_CLIENT_AUTH(caller, "SubmitExperiment");
    if (!req->has_experiment()) return ToGrpc(InvalidArgument("experiment: required"));
    auto e = ValidateExperiment(FromProto(req->experiment()), "experiment");
    if (!e.ok()) return ToGrpc(e.status());
    return Submit(caller.user, {*e}, SubmitOptions{}, resp);
  }

  grpc::Status SubmitSweep(grpc::ServerContext* ctx, const v1::SubmitSweepRequest* req, v1::SubmitResponse* resp) override {
    CADENZA_CLIENT_AUTH(caller, "SubmitSweep");
    if (!req->has_sweep()) return ToGrpc(InvalidArgument("sweep: required"));
    auto experiments = ExpandSweep(FromProto(req->sweep()), config_->max_sweep_experiments);
    if (!experiments.ok()) return ToGrpc(experiments.status());
    SubmitOptions how;
    how.sweep = true;
    return Submit(caller.user, *experiments, how, resp);
  }

  grpc::Status Resubmit(grpc::ServerContext* ctx, const v1::ResubmitRequest* req, v1::SubmitResponse* resp) override {
    CADENZA_CLIENT_AUTH(caller, "Resubmit");
    if (req->job_ids_size() == 0 && req->sweep_id() == 0) return ToGrpc(InvalidArgument("job_ids or sweep_id: required"));
    if (req->job_ids_size() > 0 && req->sweep_id() != 0) return ToGrpc(InvalidArgument("job_ids and sweep_id: give one"));
    std::vector<JobView> jobs;
    if (req->sweep_id() != 0) {
      JobFilter f;
      f.sweep_id = req->sweep_id();
      f.limit = 1 << 30;
      jobs = scheduler_->ListJobs(f);
      if (jobs.empty()) return ToGrpc(NotFound("sweep_id: no sweep " + std::to_string(req->sweep_id())));
      std::reverse(jobs.begin(), jobs.end());  // oldest first, the sweep's expansion order
    } else {
      for (int64_t id : req->job_ids()) {
        auto v = scheduler_->GetJob(id);
        if (!v.ok()) return ToGrpc(v.status());
        jobs.push_back(std::move(v).value());
      }
    }
    // The sweep's latest job per run name: an experiment resubmitted before is judged by its newest attempt.
    std::map<std::string, const JobView*> latest;
    for (const JobView& v : jobs) latest[v.job.experiment.name] = &v;
    std::vector<Experiment> experiments;
    int64_t into_sweep = req->sweep_id();
    // The new jobs belong to the old ones' submitter: an admin resubmits for that user (one user per call).
    std::string owner = caller.user;
    if (caller.admin() && !jobs.empty()) owner = jobs.front().job.user;
    for (const JobView& v : jobs) {
      const JobRecord& j = v.job;
      if (j.user != owner) {
        return ToGrpc(PermissionDenied("job " + std::to_string(j.id) + " belongs to another user; only its submitter may resubmit it" +
                                       (caller.admin() ? " (an admin token resubmits one user's jobs per call)" : "")));
      }
      if (!IsTerminal(j.state)) {
        if (req->sweep_id() != 0) continue;  // still running: nothing to redo
        return ToGrpc(FailedPrecondition("job " + std::to_string(j.id) + " is " + JobStateName(j.state) + "; cancel it first"));
      }
      if (req->sweep_id() != 0 && latest[j.experiment.name] != &v) continue;
      if (req->failed_only() && j.state == JobState::kSucceeded) continue;
      if (req->job_ids_size() > 0 && into_sweep == 0) into_sweep = j.sweep_id;
      auto full = scheduler_->GetJob(j.id);  // ListJobs leaves the YAML out
      if (!full.ok()) return ToGrpc(full.status());
      experiments.push_back(full->job.experiment);
    }
    if (experiments.empty()) return ToGrpc(FailedPrecondition("nothing to resubmit: no finished job" + std::string(req->failed_only() ? " failed or cancelled" : "") + " matches"));
    SubmitOptions how;
    how.into_sweep = into_sweep;
    how.resume = req->resume();
    return Submit(owner, experiments, how, resp);
  }

  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req, v1::Job* resp) override {
    CADENZA_CLIENT_AUTH(caller, "GetJob");
    (void)caller;
    auto v = scheduler_->GetJob(req->job_id());
    if (!v.ok()) return ToGrpc(v.status());
    ToProto(*v, resp);
    return grpc::Status::OK;
  }

  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req, v1::ListJobsResponse* resp) override {
    CADENZA_CLIENT_AUTH(caller, "ListJobs");
    (void)caller;
    JobFilter f;
    f.user = req->user();
    f.sweep_id = req->sweep_id();
    f.active_only = req->active_only();
    f.limit = req->limit();
    if (f.limit < 0) return ToGrpc(InvalidArgument("limit: expected >= 0"));
    for (const JobView& v : scheduler_->ListJobs(f)) ToProto(v, resp->add_jobs());
    if (const LaunchController* l = launcher_->load()) {
      const LauncherSnapshot snap = l->Snapshot();
      v1::LauncherStatus* out = resp->mutable_launcher();
      out->set_kind(snap.kind);
      out->set_max_groups(snap.max_groups);
      for (const LauncherSnapshot::Group& g : snap.groups) {
        v1::LaunchedGroupStatus* p = out->add_groups();
        p->set_id(g.id);
        p->set_worker_name(g.worker_name);
        p->set_state(g.state);
        p->set_detail(g.detail);
        p->set_leases(g.leases);
        p->set_idle_ms(g.idle_ms);
      }
      for (const std::string& d : snap.decisions) out->add_decisions(d);
    }
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req, v1::CancelJobResponse* resp) override {
    CADENZA_CLIENT_AUTH(caller, "CancelJob");
    if ((req->job_id() != 0) == (req->sweep_id() != 0)) return ToGrpc(InvalidArgument("job_id or sweep_id: give one"));
    auto ack = req->sweep_id() != 0 ? scheduler_->CancelSweep(caller.user, req->sweep_id(), NowUnixMs(), caller.admin())
                                    : scheduler_->Cancel(caller.user, req->job_id(), NowUnixMs(), caller.admin());
    if (!ack.ok()) return ToGrpc(ack.status());
    resp->set_tasks_cancelled(ack->tasks_cancelled);
    resp->set_jobs_cancelled(ack->jobs_cancelled);
    resp->set_state(static_cast<v1::JobState>(ack->state));
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req, grpc::ServerWriter<v1::Job>* writer) override {
    CADENZA_CLIENT_AUTH(caller, "WatchJob");
    (void)caller;
    uint64_t seen = 0;
    std::string last;
    while (!ctx->IsCancelled() && !stopping_->load()) {
      const uint64_t version = scheduler_->version();
      if (version != seen || seen == 0) {
        seen = version;
        auto v = scheduler_->GetJob(req->job_id());
        if (!v.ok()) return ToGrpc(v.status());
        v1::Job job;
        ToProto(*v, &job);
        std::string bytes = job.SerializeAsString();
        if (bytes != last) {  // only real changes of this job
          if (!writer->Write(job)) return grpc::Status::OK;
          last = std::move(bytes);
        }
        if (IsTerminal(v->job.state)) return grpc::Status::OK;
      }
      scheduler_->WaitForChange(seen, 500);
    }
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* QueryResults(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request, grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(AnswerQueryResults(ctx, request, response));
    return reactor;
  }

  grpc::Status AggregateResults(grpc::ServerContext* ctx, const v1::AggregateResultsRequest* req,
                                v1::AggregateResultsResponse* resp) override {
    CADENZA_CLIENT_AUTH(caller, "AggregateResults");
    (void)caller;
    auto rows = results_->Query(FilterOf(*req));
    if (!rows.ok()) return ToGrpc(rows.status());
    auto agg = Aggregate(rows->rows(), {req->group_by().begin(), req->group_by().end()}, {req->metrics().begin(), req->metrics().end()},
                         req->per_job());
    if (!agg.ok()) return ToGrpc(agg.status());
    *resp = std::move(agg).value();
    return grpc::Status::OK;
  }

 private:
  grpc::Status AnswerQueryResults(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
    CADENZA_CLIENT_AUTH(caller, "QueryResults");
    (void)caller;
    v1::QueryResultsRequest req;
    grpc::ByteBuffer in(*request);  // shares the slices; Deserialize consumes its argument
    if (grpc::Status s = grpc::SerializationTraits<v1::QueryResultsRequest>::Deserialize(&in, &req); !s.ok()) return s;
    auto rows = results_->Query(FromProto(req));  // its own connection and snapshot: never the scheduler's lock
    if (!rows.ok()) return ToGrpc(rows.status());
    const bool compact = req.compact();
    auto bytes = rows->Encoded(compact ? ResultPage::Encoding::kProtoCompact : ResultPage::Encoding::kProtoFull, [&] {
      v1::QueryResultsResponse resp;
      ToProto(rows->rows(), compact, &resp);
      return resp.SerializeAsString();
    });
    // The slice points into the kept bytes and holds them until gRPC has sent them.
    auto* hold = new std::shared_ptr<const std::string>(bytes);
    grpc::Slice slice(const_cast<char*>(bytes->data()), bytes->size(),
                      [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, hold);
    *response = grpc::ByteBuffer(&slice, 1);
    return grpc::Status::OK;
  }

  grpc::Status Submit(const std::string& user, const std::vector<Experiment>& experiments, const SubmitOptions& how, v1::SubmitResponse* resp) {
    for (size_t i = 0; i < experiments.size(); ++i) {  // nothing is submitted when one run would leave the roots
      const std::string field = experiments.size() == 1 ? "experiment" : "sweep.experiments[" + std::to_string(i) + "]";
      if (Status s = CheckExperimentPaths(experiments[i], config_->paths, field); !s.ok()) return ToGrpc(s);
    }
    int64_t sweep_id = 0;
    auto ids = scheduler_->Submit(user, experiments, how, NowUnixMs(), &sweep_id);
    if (!ids.ok()) return ToGrpc(ids.status());
    for (int64_t id : *ids) resp->add_job_ids(id);
    resp->set_sweep_id(sweep_id);
    return grpc::Status::OK;
  }

  const CoordinatorConfig* config_;
  const TokenAuth* auth_;
  Scheduler* scheduler_;
  ResultQuery* results_;
  const std::atomic<bool>* stopping_;
  const std::atomic<LaunchController*>* launcher_;
};

// The worker calls are short (a lock and one SQLite transaction): they run inline on gRPC's threads through the
// callback API, which saves the thread hand-offs of the synchronous API (docs/PERFORMANCE.md).
class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(const CoordinatorConfig* config, const TokenAuth* auth, WorkerRegistry* registry, Scheduler* scheduler,
                    CoordinatorMetrics* metrics)
      : config_(config), auth_(auth), registry_(registry), scheduler_(scheduler), metrics_(metrics) {}

  grpc::ServerUnaryReactor* RegisterWorkerGroup(grpc::CallbackServerContext* ctx, const v1::RegisterWorkerGroupRequest* req, v1::RegisterWorkerGroupResponse* resp) override {
    return Finish(ctx, DoRegisterWorkerGroup(ctx, req, resp));
  }
  grpc::Status DoRegisterWorkerGroup(grpc::CallbackServerContext* ctx, const v1::RegisterWorkerGroupRequest* req, v1::RegisterWorkerGroupResponse* resp) {
    CADENZA_WORKER_AUTH(caller, "RegisterWorkerGroup");
    WorkerGroup g;
    g.host = req->group().host();
    g.ranks = req->group().ranks();
    g.threads_per_rank = req->group().threads_per_rank();
    g.device = req->group().device();
    g.name = req->group().name().empty() ? caller.user : req->group().name();
    g.owner = caller.user;  // only this user's tokens (or an admin's) may act for the group from now on
    auto id = registry_->Register(g, req->group_id(), NowUnixMs(), caller.admin());
    if (!id.ok()) return ToGrpc(id.status());
    const HeartbeatOptions& hb = registry_->options();
    resp->set_group_id(*id);
    resp->set_heartbeat_period_ms(hb.period_ms);
    resp->set_lease_duration_ms(config_->scheduler.lease_ms);
    resp->set_heartbeat_failure_threshold(hb.failure_threshold);
    resp->set_worst_case_detection_ms(hb.WorstCaseDetectionMs());
    resp->set_output_root(config_->paths.output_root);  // the worker checks every task's paths again
    for (const std::string& root : config_->paths.data_roots) resp->add_data_roots(root);
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx, const v1::HeartbeatRequest* req, v1::HeartbeatResponse* resp) override {
    return Finish(ctx, DoHeartbeat(ctx, req, resp));
  }
  grpc::Status DoHeartbeat(grpc::CallbackServerContext* ctx, const v1::HeartbeatRequest* req, v1::HeartbeatResponse* resp) {
    CADENZA_WORKER_AUTH(caller, "Heartbeat");
    const int64_t now = NowUnixMs();
    const WorkerKey w = Key(req->worker());
    if (Status st = Alive(w, caller, now); !st.ok()) return ToGrpc(st);
    std::vector<StopNotice> running;
    for (const v1::TaskAttempt& a : req->running()) running.push_back({a.task_id(), a.attempt()});
    for (const StopNotice& n : scheduler_->Heartbeat(w, running, now)) {
      v1::TaskAttempt* a = resp->add_stop();
      a->set_task_id(n.task_id);
      a->set_attempt(n.attempt);
    }
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* LeaseTask(grpc::CallbackServerContext* ctx, const v1::LeaseTaskRequest* req, v1::LeaseTaskResponse* resp) override {
    return Finish(ctx, DoLeaseTask(ctx, req, resp));
  }
  grpc::Status DoLeaseTask(grpc::CallbackServerContext* ctx, const v1::LeaseTaskRequest* req, v1::LeaseTaskResponse* resp) {
    CADENZA_WORKER_AUTH(caller, "LeaseTask");
    const int64_t now = NowUnixMs();
    const WorkerKey w = Key(req->worker());
    if (Status st = Alive(w, caller, now); !st.ok()) return ToGrpc(st);  // any call proves the rank alive
    bool leased = false;
    int64_t retry_after = 0;
    if (Status st = LeaseInto(w, req->kinds(), now, resp->mutable_task(), &leased, &retry_after); !st.ok()) return ToGrpc(st);
    resp->set_leased(leased);
    if (!leased) {
      resp->clear_task();
      resp->set_retry_after_ms(retry_after);
    }
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* ReportProgress(grpc::CallbackServerContext* ctx, const v1::ReportProgressRequest* req, v1::ReportProgressResponse* resp) override {
    return Finish(ctx, DoReportProgress(ctx, req, resp));
  }
  grpc::Status DoReportProgress(grpc::CallbackServerContext* ctx, const v1::ReportProgressRequest* req, v1::ReportProgressResponse* resp) {
    CADENZA_WORKER_AUTH(caller, "ReportProgress");
    const int64_t now = NowUnixMs();
    const WorkerKey w = Key(req->worker());
    if (Status st = Alive(w, caller, now); !st.ok()) return ToGrpc(st);
    auto ack = scheduler_->Progress(w, req->task().task_id(), req->task().attempt(), req->fraction(), req->message(), req->checkpoint(), now);
    if (!ack.ok()) return ToGrpc(ack.status());
    if (auto speed = req->metrics().find("tokens_per_second"); ack->job_id != 0 && speed != req->metrics().end()) {
      metrics_->SetTrainingSpeed(ack->job_id, speed->second);
    }
    resp->set_stop(ack->stop);
    resp->set_lease_expires_unix_ms(ack->lease_expires_ms);
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* CompleteTask(grpc::CallbackServerContext* ctx, const v1::CompleteTaskRequest* req, v1::CompleteTaskResponse* resp) override {
    return Finish(ctx, DoCompleteTask(ctx, req, resp));
  }
  grpc::Status DoCompleteTask(grpc::CallbackServerContext* ctx, const v1::CompleteTaskRequest* req, v1::CompleteTaskResponse* resp) {
    CADENZA_WORKER_AUTH(caller, "CompleteTask");
    const int64_t now = NowUnixMs();
    const WorkerKey w = Key(req->worker());
    if (Status st = Alive(w, caller, now); !st.ok()) return ToGrpc(st);
    ResultRecord r;
    for (const auto& [k, x] : req->result().metrics()) r.metrics[k] = x;
    r.artifacts.assign(req->result().artifacts().begin(), req->result().artifacts().end());
    r.checkpoint = req->result().checkpoint();
    r.summary = req->result().summary();
    auto ack = scheduler_->Complete(w, req->task().task_id(), req->task().attempt(), std::move(r), now);
    if (!ack.ok()) return ToGrpc(ack.status());
    if (ack->accepted && !ack->duplicate) metrics_->CountResult(ack->kind);
    resp->set_duplicate(ack->duplicate);
    resp->set_accepted(ack->accepted);
    if (req->lease_next()) {
      bool leased = false;
      int64_t retry_after = 0;
      if (Status st = LeaseInto(w, req->next_kinds(), now, resp->mutable_next(), &leased, &retry_after); !st.ok()) return ToGrpc(st);
      resp->set_next_leased(leased);
      if (!leased) {
        resp->clear_next();
        resp->set_retry_after_ms(retry_after);
      }
    }
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* FailTask(grpc::CallbackServerContext* ctx, const v1::FailTaskRequest* req, v1::FailTaskResponse* resp) override {
    return Finish(ctx, DoFailTask(ctx, req, resp));
  }
  grpc::Status DoFailTask(grpc::CallbackServerContext* ctx, const v1::FailTaskRequest* req, v1::FailTaskResponse* resp) {
    CADENZA_WORKER_AUTH(caller, "FailTask");
    const int64_t now = NowUnixMs();
    const WorkerKey w = Key(req->worker());
    if (Status st = Alive(w, caller, now); !st.ok()) return ToGrpc(st);
    auto ack = scheduler_->Fail(w, req->task().task_id(), req->task().attempt(), req->error(), req->retryable(),
                                req->checkpoint(), now, req->preempted());
    if (!ack.ok()) return ToGrpc(ack.status());
    resp->set_will_retry(ack->will_retry);
    resp->set_attempts_left(ack->attempts_left);
    resp->set_duplicate(ack->duplicate);
    return grpc::Status::OK;
  }

 private:
  // The caller's user owns the worker's group (or the caller is an admin), and the rank is alive as of `now` (any
  // call proves it).
  Status Alive(const WorkerKey& w, const Principal& caller, int64_t now) {
    CADENZA_RETURN_IF_ERROR(registry_->CheckOwner(w, caller.user, caller.admin()));
    return registry_->Heartbeat(w, now);
  }

  // Leases the next task for `w` among `kinds` into `task`; *leased false (and *retry_after_ms set) when none is ready.
  // Records how long it took (the /metrics lease latency histogram).
  Status LeaseInto(const WorkerKey& w, const google::protobuf::RepeatedField<int>& kinds, int64_t now, v1::Task* task, bool* leased,
                   int64_t* retry_after_ms) {
    const auto start = std::chrono::steady_clock::now();
    Status s = LeaseIntoUntimed(w, kinds, now, task, leased, retry_after_ms);
    metrics_->ObserveLease(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return s;
  }
  Status LeaseIntoUntimed(const WorkerKey& w, const google::protobuf::RepeatedField<int>& kinds, int64_t now, v1::Task* task, bool* leased,
                          int64_t* retry_after_ms) {
    uint32_t mask = 0;
    for (int i = 0; i < kinds.size(); ++i) {
      const int k = kinds.Get(i);
      if (k < 1 || k >= kNumTaskKinds) return InvalidArgument("kinds[" + std::to_string(i) + "]: unknown task kind " + std::to_string(k));
      mask |= 1u << k;
    }
    auto a = scheduler_->Lease(w, mask, now);
    if (!a.ok()) return a.status();
    *leased = a->has_value();
    if (*leased) ToProto(**a, (**a).task.lease_expires_ms, task);
    else *retry_after_ms = config_->idle_poll_ms;
    return Status::Ok();
  }

  static grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  const CoordinatorConfig* config_;
  const TokenAuth* auth_;
  WorkerRegistry* registry_;
  Scheduler* scheduler_;
  CoordinatorMetrics* metrics_;
};

namespace {

StatusOr<std::string> ReadPem(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  if (!in) return NotFound(key + ": cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(const CoordinatorConfig& config) {
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  s->config_ = config;
  auto auth = TokenAuth::Load(config.tokens_file);
  if (!auth.ok()) return auth.status();
  s->auth_ = std::make_unique<TokenAuth>(std::move(auth).value());
  auto store = Store::Open(config.database);
  if (!store.ok()) return store.status();
  s->store_ = std::move(store).value();
  auto results = ResultQuery::Open(s->store_->path(), config.result_cache_rows);
  if (!results.ok()) return results.status();
  s->results_ = std::move(results).value();
  s->store_->SetJobWriteObserver([reads = s->results_.get()](int64_t job_id) { reads->NoteJobWritten(job_id); });
  const int64_t now = NowUnixMs();
  s->registry_ = std::make_unique<WorkerRegistry>(s->store_.get(), config.heartbeat);
  if (Status st = s->registry_->Recover(now); !st.ok()) return st;
  WorkerRegistry* registry = s->registry_.get();
  s->scheduler_ = std::make_unique<Scheduler>(s->store_.get(), config.scheduler, [registry] { return registry->LiveRanks(); });
  if (Status st = s->scheduler_->Recover(now); !st.ok()) return st;

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!config.tls_cert.empty()) {
    auto cert = ReadPem(config.tls_cert, "tls.cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(config.tls_key, "tls.key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(opts);
  }
  s->client_service_ = std::make_unique<ClientServiceImpl>(&s->config_, s->auth_.get(), s->scheduler_.get(), s->results_.get(), &s->stopping_, &s->launcher_);
  s->metrics_ = std::make_unique<CoordinatorMetrics>();
  s->worker_service_ =
      std::make_unique<WorkerServiceImpl>(&s->config_, s->auth_.get(), s->registry_.get(), s->scheduler_.get(), s->metrics_.get());
  // gRPC's absl mutexes check lock order on every acquisition in this build (about 3% of a loaded coordinator's CPU).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a second coordinator on this port must fail, not share it
  builder.AddListeningPort(config.listen, creds, &s->port_);
  // The synchronous ClientService (low rate: submissions, queries, watch streams) needs few polling threads; the
  // worker calls run on the callback threads.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  builder.SetMaxReceiveMessageSize(config.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(config.max_send_message_bytes);
  builder.RegisterService(s->client_service_.get());
  builder.RegisterService(s->worker_service_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return Unavailable("listen: cannot bind " + config.listen + " (is another process, e.g. a second coordinator, on that port?)");
  }
  if (const std::string http = config.HttpAddress(); !http.empty()) {
    HttpApiOptions o;
    o.public_metrics = config.http_public_metrics;
    o.source = "the coordinator at " + config.listen.substr(0, config.listen.rfind(':')) + ":" + std::to_string(s->port_);
    HttpApi::Live live;
    live.task_counts = [sched = s->scheduler_.get()] { return sched->TaskCounts(); };
    live.workers = [registry] { return std::make_pair(registry->LiveGroups(), registry->LiveRanks()); };
    s->http_api_ = std::make_unique<HttpApi>(s->auth_.get(), s->results_.get(), s->metrics_.get(), live, o);
    auto server = HttpServer::Start(http, config.tls_cert, config.tls_key, s->http_api_.get());
    if (!server.ok()) {
      s->server_->Shutdown();
      return server.status();
    }
    s->http_ = std::move(server).value();
  }
  s->reaper_ = std::thread([p = s.get()] { p->ReaperLoop(); });
  return s;
}

void CoordinatorServer::ReaperLoop() {
  while (!stopping_.load()) {
    const int64_t now = NowUnixMs();
    for (const WorkerKey& w : registry_->CollectDead(now)) scheduler_->ReleaseWorker(w, now);
    scheduler_->ExpireLeases(now);
    // Wakes early on a state change only to notice `stopping_`; the sweep itself runs every reaper_interval_ms.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.heartbeat.reaper_interval_ms);
    while (!stopping_.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(50, config_.heartbeat.reaper_interval_ms)));
    }
  }
}

void CoordinatorServer::Shutdown() {
  // A signal thread and the destructor may both call this: the second waits until the first is done.
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (!stopping_.exchange(true) && server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (http_) http_->Stop();
  if (reaper_.joinable()) reaper_.join();
}

void CoordinatorServer::Wait() {
  if (server_) server_->Wait();
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace cadenza::coord
