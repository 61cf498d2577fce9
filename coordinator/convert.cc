// Protobuf <-> plain record conversions and result aggregation for the gRPC adapters.
#include "coordinator/convert.h"

#include <cmath>
#include <map>
#include <set>

namespace cadenza::coord {

const char* TaskKindName(v1::TaskKind k) {
  switch (k) {
    case v1::TASK_KIND_TRAIN: return "train";
    case v1::TASK_KIND_GENERATE: return "generate";
    case v1::TASK_KIND_EVALUATE: return "evaluate";
    case v1::TASK_KIND_AGGREGATE: return "aggregate";
    default: return "unknown";
  }
}

grpc::Status ToGrpc(const Status& s) {
  using G = grpc::StatusCode;
  G code = G::UNKNOWN;
  switch (s.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument: code = G::INVALID_ARGUMENT; break;
    case StatusCode::kNotFound: code = G::NOT_FOUND; break;
    case StatusCode::kDataLoss: code = G::DATA_LOSS; break;
    case StatusCode::kFailedPrecondition: code = G::FAILED_PRECONDITION; break;
    case StatusCode::kInternal: code = G::INTERNAL; break;
    case StatusCode::kIo: code = G::INTERNAL; break;
    case StatusCode::kUnauthenticated: code = G::UNAUTHENTICATED; break;
    case StatusCode::kPermissionDenied: code = G::PERMISSION_DENIED; break;
    case StatusCode::kAborted: code = G::ABORTED; break;
    case StatusCode::kUnavailable: code = G::UNAVAILABLE; break;
    case StatusCode::kDeadlineExceeded: code = G::DEADLINE_EXCEEDED; break;
  }
  return grpc::Status(code, s.message());
}

Status FromGrpc(const grpc::Status& s) {
  using G = grpc::StatusCode;
  StatusCode code = StatusCode::kInternal;
  switch (s.error_code()) {
    case G::OK: return Status::Ok();
    case G::INVALID_ARGUMENT: case G::OUT_OF_RANGE: code = StatusCode::kInvalidArgument; break;
    case G::NOT_FOUND: code = StatusCode::kNotFound; break;
    case G::DATA_LOSS: code = StatusCode::kDataLoss; break;
    case G::FAILED_PRECONDITION: case G::ALREADY_EXISTS: code = StatusCode::kFailedPrecondition; break;
    case G::UNAUTHENTICATED: code = StatusCode::kUnauthenticated; break;
    case G::PERMISSION_DENIED: code = StatusCode::kPermissionDenied; break;
    case G::ABORTED: code = StatusCode::kAborted; break;
    case G::UNAVAILABLE: case G::CANCELLED: code = StatusCode::kUnavailable; break;
    case G::DEADLINE_EXCEEDED: code = StatusCode::kDeadlineExceeded; break;
    case G::RESOURCE_EXHAUSTED: code = StatusCode::kInvalidArgument; break;
    default: break;
  }
  return Status(code, s.error_message());
}

ExperimentSpec FromProto(const v1::ExperimentSpec& p) {
  ExperimentSpec s;
  s.experiment_yaml = p.experiment_yaml();
  s.name = p.name();
  s.dataset = p.dataset();
  s.model_family = p.model_family();
  s.seed = p.seed();
  s.output_dir = p.output_dir();
  s.samples = p.samples();
  s.samples_per_task = p.samples_per_task();
  s.reference_split = p.reference_split();
  return s;
}

void ToProto(const ExperimentSpec& s, v1::ExperimentSpec* p) {
  p->set_experiment_yaml(s.experiment_yaml);
  p->set_name(s.name);
  p->set_dataset(s.dataset);
  p->set_model_family(s.model_family);
  p->set_seed(s.seed);
  p->set_output_dir(s.output_dir);
  p->set_samples(s.samples);
  p->set_samples_per_task(s.samples_per_task);
  p->set_reference_split(s.reference_split);
}

SweepSpec FromProto(const v1::SweepSpec& p) {
  SweepSpec s;
  s.base = FromProto(p.base());
  s.datasets.assign(p.datasets().begin(), p.datasets().end());
  s.model_families.assign(p.model_families().begin(), p.model_families().end());
  s.seeds.assign(p.seeds().begin(), p.seeds().end());
  s.name = p.name();
  return s;
}

void ToProto(const Assignment& a, int64_t lease_expires_unix_ms, v1::Task* p) {
  const TaskRecord& t = a.task;
  const Experiment& e = a.experiment;
  p->set_task_id(t.id);
  p->set_attempt(t.attempt);
  p->set_kind(static_cast<v1::TaskKind>(t.kind));
  p->set_job_id(t.job_id);
  p->set_user(a.user);
  p->set_experiment_name(e.name);
  p->set_experiment_yaml(e.experiment_yaml);
  p->set_dataset(e.dataset);
  p->set_model_family(e.model_family);
  p->set_seed(e.seed);
  p->set_output_dir(e.output_dir);
  p->set_checkpoint(a.checkpoint);
  p->set_resume(a.resume);
  p->set_shard_index(t.shard_index);
  p->set_shard_count(t.shard_count);
  p->set_sample_begin(t.sample_begin);
  p->set_sample_count(t.sample_count);
  for (uint64_t s : a.seeds) p->add_seeds(s);
  p->set_samples_dir(a.samples_dir);
  p->set_reference_split(e.reference_split);
  p->set_report_path(a.report_path);
  for (const std::string& in : a.inputs) p->add_inputs(in);
  p->set_lease_expires_unix_ms(lease_expires_unix_ms);
}

void ToProto(const JobView& v, v1::Job* p) {
  const JobRecord& j = v.job;
  p->set_job_id(j.id);
  p->set_sweep_id(j.sweep_id);
  p->set_user(j.user);
  p->set_name(j.experiment.name);
  p->set_state(static_cast<v1::JobState>(j.state));
  p->set_dataset(j.experiment.dataset);
  p->set_model_family(j.experiment.model_family);
  p->set_seed(j.experiment.seed);
  p->set_output_dir(j.experiment.output_dir);
  p->set_samples(j.experiment.samples);
  p->set_created_unix_ms(j.created_ms);
  p->set_finished_unix_ms(j.finished_ms);
  v1::TaskCounts* c = p->mutable_counts();
  const int* n = v.counts.by_state;
  c->set_blocked(n[1]);
  c->set_pending(n[2]);
  c->set_leased(n[3]);
  c->set_succeeded(n[4]);
  c->set_failed(n[5]);
  c->set_cancelled(n[6]);
  p->set_progress(v.progress);
  p->set_error(j.error);
  for (const TaskRecord& t : v.tasks) {
    v1::TaskStatus* s = p->add_tasks();
    s->set_task_id(t.id);
    s->set_kind(static_cast<v1::TaskKind>(t.kind));
    s->set_state(static_cast<v1::TaskState>(t.state));
    s->set_attempt(t.attempt);
    s->set_max_attempts(t.max_attempts);
    if (t.state == TaskState::kLeased) {
      s->mutable_worker()->set_group_id(t.worker.group_id);
      s->mutable_worker()->set_rank(t.worker.rank);
    }
    s->set_fraction(t.fraction);
    s->set_message(t.message);
    s->set_shard_index(t.shard_index);
  }
}

void ToProto(const ResultView& v, v1::ResultRow* p) {
  const ResultRecord& r = v.result;
  p->set_job_id(r.job_id);
  p->set_sweep_id(v.job.sweep_id);
  p->set_task_id(r.task_id);
  p->set_attempt(r.attempt);
  p->set_kind(static_cast<v1::TaskKind>(r.kind));
  p->set_user(v.job.user);
  p->set_experiment_name(v.job.experiment.name);
  p->set_dataset(v.job.experiment.dataset);
  p->set_model_family(v.job.experiment.model_family);
  p->set_seed(v.job.experiment.seed);
  for (const auto& [k, x] : r.metrics) (*p->mutable_metrics())[k] = x;
  for (const std::string& a : r.artifacts) p->add_artifacts(a);
  p->set_recorded_unix_ms(r.recorded_ms);
  p->set_shard_index(r.shard_index);
}

ResultFilter FromProto(const v1::QueryResultsRequest& p) {
  ResultFilter f;
  f.job_id = p.job_id();
  f.sweep_id = p.sweep_id();
  f.kind = p.kind() == v1::TASK_KIND_UNSPECIFIED ? TaskKind::kAggregate : static_cast<TaskKind>(p.kind());
  f.user = p.user();
  f.dataset = p.dataset();
  f.model_family = p.model_family();
  f.limit = p.limit();
  return f;
}

StatusOr<v1::AggregateResultsResponse> Aggregate(const std::vector<ResultView>& rows, const std::vector<std::string>& group_by_in,
                                                 const std::vector<std::string>& metrics) {
  const std::vector<std::string> group_by = group_by_in.empty() ? std::vector<std::string>{"dataset", "model_family"} : group_by_in;
  auto value = [](const ResultView& r, const std::string& f) -> std::string {
    const JobRecord& j = r.job;
    if (f == "dataset") return j.experiment.dataset;
    if (f == "model_family") return j.experiment.model_family;
    if (f == "seed") return std::to_string(j.experiment.seed);
    if (f == "experiment") return j.experiment.name;
    if (f == "user") return j.user;
    if (f == "sweep") return std::to_string(j.sweep_id);
    return std::string();
  };
  static const std::set<std::string> known = {"dataset", "model_family", "seed", "experiment", "user", "sweep"};
  for (size_t i = 0; i < group_by.size(); ++i) {
    if (!known.count(group_by[i])) {
      return InvalidArgument("group_by[" + std::to_string(i) + "]: expected dataset, model_family, seed, experiment, user or sweep, found '" +
                             group_by[i] + "'");
    }
  }
  const std::set<std::string> wanted(metrics.begin(), metrics.end());
  std::map<std::vector<std::string>, std::pair<int, std::map<std::string, std::vector<double>>>> groups;
  for (const ResultView& r : rows) {
    std::vector<std::string> key;
    for (const std::string& f : group_by) key.push_back(value(r, f));
    auto& g = groups[key];
    g.first++;
    for (const auto& [name, x] : r.result.metrics) {
      if (wanted.empty() || wanted.count(name)) g.second[name].push_back(x);
    }
  }
  v1::AggregateResultsResponse out;
  for (const auto& [key, g] : groups) {
    v1::AggregateRow* row = out.add_rows();
    for (size_t i = 0; i < group_by.size(); ++i) (*row->mutable_group())[group_by[i]] = key[i];
    row->set_count(g.first);
    for (const auto& [name, xs] : g.second) {
      v1::MetricSummary* m = row->add_metrics();
      double sum = 0, lo = xs[0], hi = xs[0];
      for (double x : xs) {
        sum += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
      const double mean = sum / xs.size();
      double ss = 0;
      for (double x : xs) ss += (x - mean) * (x - mean);
      m->set_name(name);
      m->set_n(static_cast<int>(xs.size()));
      m->set_mean(mean);
      m->set_stddev(xs.size() > 1 ? std::sqrt(ss / (xs.size() - 1)) : 0.0);
      m->set_min(lo);
      m->set_max(hi);
    }
  }
  return out;
}

}  // namespace cadenza::coord
