// Protobuf <-> plain record conversions and result aggregation for the gRPC adapters.
#include "coordinator/convert.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace cadenza::coord {

// The proto enum's values equal TaskKind's (types.h): one list of names.
const char* TaskKindName(v1::TaskKind k) { return TaskKindName(static_cast<TaskKind>(k)); }

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
  for (const v1::NamedModel& m : p.models()) s.models.push_back({m.name(), m.model_yaml(), {m.set().begin(), m.set().end()}});
  s.match_tolerance = p.match_tolerance();
  s.allow_unmatched = p.allow_unmatched();
  s.dataset_fractions.assign(p.dataset_fractions().begin(), p.dataset_fractions().end());
  s.context_lengths.assign(p.context_lengths().begin(), p.context_lengths().end());
  for (const v1::GridAxis& g : p.grid()) s.grid.push_back({g.key(), {g.values().begin(), g.values().end()}});
  s.random = p.random();
  s.random_seed = p.random_seed();
  s.budget.tokens = p.budget().tokens();
  s.budget.epochs = p.budget().epochs();
  s.budget.steps = p.budget().steps();
  return s;
}

void ToProto(const SweepSpec& s, v1::SweepSpec* p) {
  ToProto(s.base, p->mutable_base());
  for (const std::string& d : s.datasets) p->add_datasets(d);
  for (const std::string& f : s.model_families) p->add_model_families(f);
  for (uint64_t x : s.seeds) p->add_seeds(x);
  p->set_name(s.name);
  for (const NamedModel& m : s.models) {
    v1::NamedModel* n = p->add_models();
    n->set_name(m.name);
    n->set_model_yaml(m.model_yaml);
    for (const auto& [k, v] : m.set) (*n->mutable_set())[k] = v;
  }
  p->set_match_tolerance(s.match_tolerance);
  p->set_allow_unmatched(s.allow_unmatched);
  for (double f : s.dataset_fractions) p->add_dataset_fractions(f);
  for (int c : s.context_lengths) p->add_context_lengths(c);
  for (const GridAxis& g : s.grid) {
    v1::GridAxis* a = p->add_grid();
    a->set_key(g.key);
    for (const std::string& v : g.values) a->add_values(v);
  }
  p->set_random(s.random);
  p->set_random_seed(s.random_seed);
  p->mutable_budget()->set_tokens(s.budget.tokens);
  p->mutable_budget()->set_epochs(s.budget.epochs);
  p->mutable_budget()->set_steps(s.budget.steps);
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
  for (const auto& [k, x] : j.experiment.axes) (*p->mutable_axes())[k] = x;
  p->set_parameters(j.experiment.parameters);
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

namespace {

// A result row's own fields (compact pages carry only these).
void ResultFieldsToProto(const ResultRecord& r, v1::ResultRow* p) {
  p->set_job_id(r.job_id);
  p->set_task_id(r.task_id);
  p->set_attempt(r.attempt);
  p->set_kind(static_cast<v1::TaskKind>(r.kind));
  for (const auto& [k, x] : r.metrics) (*p->mutable_metrics())[k] = x;
  for (const std::string& a : r.artifacts) p->add_artifacts(a);
  p->set_recorded_unix_ms(r.recorded_ms);
  p->set_shard_index(r.shard_index);
}

// The fields a row takes from its job (a compact page's `jobs` entry has only these).
void JobFieldsToProto(const JobRecord& j, v1::ResultRow* p) {
  p->set_job_id(j.id);
  p->set_sweep_id(j.sweep_id);
  p->set_user(j.user);
  p->set_experiment_name(j.experiment.name);
  p->set_dataset(j.experiment.dataset);
  p->set_model_family(j.experiment.model_family);
  p->set_seed(j.experiment.seed);
  for (const auto& [k, x] : j.experiment.axes) (*p->mutable_axes())[k] = x;
  p->set_parameters(j.experiment.parameters);
}

}  // namespace

void ToProto(const ResultView& v, v1::ResultRow* p) {
  JobFieldsToProto(v.job, p);
  ResultFieldsToProto(v.result, p);
}

void ToProto(const std::vector<ResultView>& rows, bool compact, v1::QueryResultsResponse* p) {
  p->mutable_rows()->Reserve(static_cast<int>(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!compact) {
      ToProto(rows[i], p->add_rows());
      continue;
    }
    if (i == 0 || rows[i].result.job_id != rows[i - 1].result.job_id) JobFieldsToProto(rows[i].job, p->add_jobs());
    ResultFieldsToProto(rows[i].result, p->add_rows());
  }
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

ResultFilter FilterOf(const v1::AggregateResultsRequest& p) {
  ResultFilter f = FromProto(p.filter());
  if (p.per_job()) {
    f.kind = TaskKind::kUnspecified;                      // every kind: merged per job below
    if (p.filter().limit() == 0) f.limit = 10000000;      // whole runs: a cut would drop some of a run's results
  }
  return f;
}

std::vector<ResultView> MergePerJob(const std::vector<ResultView>& rows) {
  std::map<int64_t, size_t> at;
  std::vector<ResultView> out;
  for (const ResultView& r : rows) {
    const TaskKind k = r.result.kind;
    if (r.job.state != JobState::kSucceeded || k == TaskKind::kGenerate || k == TaskKind::kEvaluate) continue;
    auto [it, fresh] = at.emplace(r.job.id, out.size());
    if (fresh) {
      out.push_back(r);
      out.back().result.kind = TaskKind::kUnspecified;
      out.back().result.metrics.clear();
      out.back().result.artifacts.clear();
    }
    ResultView& m = out[it->second];
    for (const auto& [name, x] : r.result.metrics) {
      // The train task's own NLL and throughput keep a prefix: the score and generate tasks report same-named figures.
      const bool clash = k == TaskKind::kTrain && (name.find('/') == std::string::npos);
      m.result.metrics[clash ? "train/" + name : name] = x;
    }
    for (const std::string& a : r.result.artifacts) m.result.artifacts.push_back(a);
  }
  return out;
}

StatusOr<v1::AggregateResultsResponse> Aggregate(const std::vector<ResultView>& rows_in, const std::vector<std::string>& group_by_in,
                                                 const std::vector<std::string>& metrics, bool per_job) {
  const std::vector<ResultView> merged = per_job ? MergePerJob(rows_in) : std::vector<ResultView>();
  const std::vector<ResultView>& rows = per_job ? merged : rows_in;
  static const std::set<std::string> known = {"dataset", "model_family", "seed", "experiment", "user", "sweep", "parameters", "cell"};
  std::vector<std::string> group_by;
  for (const std::string& g : group_by_in.empty() ? std::vector<std::string>{"dataset", "model_family"} : group_by_in) {
    if (g != "cell") {
      group_by.push_back(g);
      continue;
    }
    // Every axis any row has, except the seed (that is what a cell aggregates over), after family and size.
    std::set<std::string> axes;
    for (const ResultView& r : rows) for (const auto& [k, v] : r.job.experiment.axes) if (k != "seed") axes.insert(k);
    group_by.push_back("model_family");
    group_by.push_back("parameters");
    for (const char* first : {"dataset", "model", "dataset_fraction", "context_length"}) {
      if (axes.erase(first)) group_by.push_back(first);
    }
    for (const std::string& a : axes) group_by.push_back(a);
  }
  // An axis name is known when some row has it (with no rows there is nothing to group).
  std::set<std::string> axes;
  for (const ResultView& r : rows) for (const auto& [k, v] : r.job.experiment.axes) axes.insert(k);
  for (size_t i = 0; i < group_by.size(); ++i) {
    const std::string& g = group_by[i];
    if (known.count(g) || axes.count(g) || rows.empty()) continue;
    std::string names;
    for (const std::string& a : axes) names += ", " + a;
    return InvalidArgument("group_by[" + std::to_string(i) + "]: expected dataset, model_family, seed, experiment, user, sweep, parameters, cell" +
                           (axes.empty() ? std::string(" (these results have no sweep axes)") : " or an axis (" + names.substr(2) + ")") +
                           ", found '" + g + "'");
  }
  auto value = [](const ResultView& r, const std::string& f) -> std::string {
    const JobRecord& j = r.job;
    if (f == "dataset") {
      auto a = j.experiment.axes.find("dataset");
      return a != j.experiment.axes.end() ? a->second : j.experiment.dataset;
    }
    if (f == "model_family") return j.experiment.model_family;
    if (f == "seed") return std::to_string(j.experiment.seed);
    if (f == "experiment") return j.experiment.name;
    if (f == "user") return j.user;
    if (f == "sweep") return std::to_string(j.sweep_id);
    if (f == "parameters") return std::to_string(j.experiment.parameters);
    auto a = j.experiment.axes.find(f);
    return a == j.experiment.axes.end() ? std::string() : a->second;
  };
  const std::set<std::string> wanted(metrics.begin(), metrics.end());
  std::vector<std::vector<std::string>> order;  // groups in the order of their first row (the sweep's expansion order)
  std::map<std::vector<std::string>, std::pair<int, std::map<std::string, std::vector<double>>>> groups;
  for (const ResultView& r : rows) {
    std::vector<std::string> key;
    for (const std::string& f : group_by) key.push_back(value(r, f));
    auto [it, fresh] = groups.try_emplace(key);
    if (fresh) order.push_back(key);
    auto& g = it->second;
    g.first++;
    for (const auto& [name, x] : r.result.metrics) {
      if (wanted.empty() || wanted.count(name)) g.second[name].push_back(x);
    }
  }
  v1::AggregateResultsResponse out;
  for (const auto& key : order) {
    const auto& g = groups.at(key);
    v1::AggregateRow* row = out.add_rows();
    for (size_t i = 0; i < group_by.size(); ++i) (*row->mutable_group())[group_by[i]] = key[i];
    row->set_count(g.first);
    for (const auto& [name, xs] : g.second) {
      const MetricStats st = SummarizeRuns(xs);
      v1::MetricSummary* m = row->add_metrics();
      m->set_name(name);
      m->set_n(st.n);
      m->set_mean(st.mean);
      m->set_stddev(st.stddev);
      m->set_min(st.min);
      m->set_max(st.max);
      m->set_ci95(st.ci95);
    }
  }
  return out;
}

}  // namespace cadenza::coord
