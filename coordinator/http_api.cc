// Read-only HTTP API of the coordinator (see http_api.h).
#include "coordinator/http_api.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "coordinator/cell_table.h"
#include "coordinator/convert.h"
#include "core/build_info.h"
#include "core/report/page.h"
#include "core/report/report.h"
#include "core/run_layout.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

HttpResponse JsonResponse(const json& body, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse Error(int code, const std::string& message) {
  HttpResponse r = JsonResponse({{"error", {{"code", code}, {"message", message}}}}, code);
  if (code == 401) r.headers["WWW-Authenticate"] = "Bearer realm=\"cadenza\"";
  return r;
}

HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return Error(400, s.message());
    case StatusCode::kNotFound: return Error(404, s.message());
    case StatusCode::kUnauthenticated: return Error(401, s.message());
    case StatusCode::kPermissionDenied: return Error(403, s.message());
    default: return Error(500, s.message());
  }
}

// The query parameters a path accepts; anything else is a 400 naming it (a typo must not silently widen a query).
Status CheckParams(const HttpRequest& r, const std::set<std::string>& allowed) {
  for (const auto& [k, v] : r.query) {
    if (!allowed.count(k)) {
      std::string names;
      for (const std::string& a : allowed) names += (names.empty() ? "" : ", ") + a;
      return InvalidArgument("query parameter '" + k + "': not known here" + (names.empty() ? "" : " (expected " + names + ")"));
    }
  }
  return Status::Ok();
}

// An integer parameter (absent: `fallback`); `what` names it in the error.
StatusOr<int64_t> IntParam(const HttpRequest& r, const std::string& name, int64_t fallback, int64_t min, int64_t max) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno != 0 || v < min || v > max) {
    return InvalidArgument("query parameter '" + name + "': expected an integer in [" + std::to_string(min) + ", " +
                           std::to_string(max) + "], found '" + it->second + "'");
  }
  return static_cast<int64_t>(v);
}

std::string Param(const HttpRequest& r, const std::string& name) {
  auto it = r.query.find(name);
  return it == r.query.end() ? std::string() : it->second;
}

// "/api/v1/jobs/12/series" with prefix "/api/v1/jobs/" -> id 12, rest "/series". False when no id follows.
bool IdAfter(const std::string& path, const std::string& prefix, int64_t* id, std::string* rest) {
  if (path.compare(0, prefix.size(), prefix) != 0) return false;
  size_t i = prefix.size(), j = i;
  while (j < path.size() && j - i < 18 && std::isdigit(static_cast<unsigned char>(path[j]))) ++j;
  if (j == i || (j < path.size() && path[j] != '/')) return false;
  *id = std::stoll(path.substr(i, j - i));
  *rest = path.substr(j);
  return *id > 0;
}

json JobJson(const JobSummary& j) {
  return {{"id", j.id},
          {"sweep", j.sweep_id},
          {"user", j.user},
          {"name", j.name},
          {"dataset", j.dataset},
          {"model_family", j.model_family},
          {"seed", j.seed},
          {"parameters", j.parameters},
          {"axes", j.axes},
          {"state", JobStateName(j.state)},
          {"created_ms", j.created_ms},
          {"finished_ms", j.finished_ms},
          {"error", j.error},
          {"output_dir", j.output_dir},
          {"progress", j.train_fraction},
          {"tasks", {{"pending", j.tasks_pending}, {"leased", j.tasks_leased}, {"succeeded", j.tasks_succeeded}, {"total", j.tasks_total}}}};
}

json ResultJson(const ResultView& v) {
  const JobRecord& j = v.job;
  const ResultRecord& r = v.result;
  return {{"job", j.id},
          {"sweep", j.sweep_id},
          {"experiment", j.experiment.name},
          {"dataset", j.experiment.dataset},
          {"model_family", j.experiment.model_family},
          {"seed", j.experiment.seed},
          {"parameters", j.experiment.parameters},
          {"axes", j.experiment.axes},
          {"task", r.task_id},
          {"attempt", r.attempt},
          {"kind", TaskKindName(r.kind)},
          {"shard", r.shard_index},
          {"metrics", r.metrics},
          {"artifacts", r.artifacts},
          {"summary", r.summary},
          {"recorded_ms", r.recorded_ms}};
}

// The metrics.csv among a train result's artifacts ("" when it has none).
std::string MetricsCsvOf(const ResultRecord& r) {
  for (const std::string& a : r.artifacts) {
    if (fs::path(a).filename() == run_layout::kMetricsCsvName) return a;
  }
  return "";
}

StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": not readable by the coordinator");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

HttpApi::HttpApi(const TokenAuth* auth, ResultQuery* reads, CoordinatorMetrics* metrics, Live live, HttpApiOptions options)
    : auth_(auth), reads_(reads), metrics_(metrics), live_(std::move(live)), options_(std::move(options)) {}

HttpResponse HttpApi::Handle(const HttpRequest& r) const {
  if (r.method != "GET" && r.method != "HEAD") {
    HttpResponse e = Error(405, r.method + " " + r.path + ": this API is read-only (GET)");
    e.headers["Allow"] = "GET, HEAD";
    return e;
  }
  if (r.path == "/" || r.path == "/index.html") {  // the page holds no data: it asks for a token before any read
    HttpResponse page;
    page.content_type = "text/html; charset=utf-8";
    page.body = PageHtml(nullptr);
    return page;
  }
  const bool open = options_.public_metrics && (r.path == "/metrics" || r.path == "/healthz");
  if (!open) {
    if (r.authorization.empty()) return Error(401, "missing bearer token (Authorization: Bearer <token>, as for `cadenza`)");
    auto caller = auth_->Authenticate(r.authorization);
    if (!caller.ok()) return Error(401, caller.status().message());
    // Reads are for people (user and admin tokens); a worker token serves worker groups only (403 naming the role).
    if (Status s = RequireRole(*caller, {Role::kUser}, "GET " + r.path); !s.ok()) return FromStatus(s);
  }
  return Route(r);
}

HttpResponse HttpApi::Route(const HttpRequest& r) const {
  const std::string& p = r.path;
  int64_t id = 0;
  std::string rest;
  if (p == "/healthz") return Healthz();
  if (p == "/metrics") return Metrics();
  if (p == "/api/v1/sweeps") return Sweeps(r);
  if (IdAfter(p, "/api/v1/sweeps/", &id, &rest)) {
    if (Status s = CheckParams(r, {}); !s.ok()) return FromStatus(s);
    if (rest == "/cells") return Cells(id);
    if (rest == "/report") return Report(id);
  }
  if (p == "/api/v1/jobs") return Jobs(r);
  if (IdAfter(p, "/api/v1/jobs/", &id, &rest)) {
    if (rest.empty() || rest == "/") {
      if (Status s = CheckParams(r, {}); !s.ok()) return FromStatus(s);
      return Job(id);
    }
    if (rest == "/series") return Series(id, r);
  }
  if (p == "/api/v1/results") return Results(r);
  if (p == "/api/v1/artifact") return Artifact(r);
  return Error(404, p + ": no such endpoint (see /api/v1/sweeps, /api/v1/jobs, /api/v1/results, /metrics, /healthz)");
}

HttpResponse HttpApi::Healthz() const {
  JobQuery one;
  one.limit = 1;
  auto read = reads_->Jobs(one);  // the database answers a read
  if (!read.ok()) return JsonResponse({{"status", "unavailable"}, {"error", read.status().message()}}, 503);
  return JsonResponse({{"status", "ok"}});
}

HttpResponse HttpApi::Metrics() const {
  CoordinatorMetrics::Snapshot now;
  now.tasks = live_.task_counts();
  std::tie(now.groups, now.ranks) = live_.workers();
  const ResultQuery::CacheCounts cache = reads_->cache_counts();
  now.result_cache_hits = cache.hits;
  now.result_cache_misses = cache.misses;
  now.result_cache_rows = cache.rows;
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_->Text(now);
  return r;
}

HttpResponse HttpApi::Sweeps(const HttpRequest& r) const {
  if (Status s = CheckParams(r, {"user"}); !s.ok()) return FromStatus(s);
  auto sweeps = reads_->Sweeps(Param(r, "user"));
  if (!sweeps.ok()) return FromStatus(sweeps.status());
  json list = json::array();
  for (const SweepSummary& w : *sweeps) {
    json states = json::object();
    for (int k = 1; k < 6; ++k) states[JobStateName(static_cast<JobState>(k))] = w.jobs_by_state[k];
    list.push_back({{"id", w.id}, {"user", w.user}, {"jobs", w.jobs}, {"jobs_by_state", states}, {"created_ms", w.created_ms},
                    {"last_finished_ms", w.last_finished_ms}});
  }
  return JsonResponse({{"sweeps", list}});
}

StatusOr<nlohmann::json> HttpApi::CellRows(int64_t sweep) const {
  const v1::AggregateResultsRequest req = CellRequest(sweep);
  auto rows = reads_->Query(FilterOf(req));
  if (!rows.ok()) return rows.status();
  auto agg = Aggregate(rows->rows(), {req.group_by().begin(), req.group_by().end()}, {}, /*per_job=*/true);
  if (!agg.ok()) return agg.status();
  const CellTable table = CellTableOf(*agg, {}, /*mean_ci=*/false);
  return RowsJson(table.header, table.rows);
}

HttpResponse HttpApi::Cells(int64_t sweep) const {
  JobQuery q;
  q.sweep_id = sweep;
  q.limit = 1;
  auto any = reads_->Jobs(q);
  if (!any.ok()) return FromStatus(any.status());
  if (any->empty()) return Error(404, "sweep " + std::to_string(sweep) + ": no such sweep");
  auto cells = CellRows(sweep);
  if (!cells.ok()) return FromStatus(cells.status());
  return JsonResponse(*cells);
}

HttpResponse HttpApi::Report(int64_t sweep) const {
  // The sweep's runs first: they say whether it exists, and which runs have no result yet.
  JobQuery q;
  q.sweep_id = sweep;
  q.limit = 100000;
  auto jobs = reads_->Jobs(q);
  if (!jobs.ok()) return FromStatus(jobs.status());
  if (jobs->empty()) return Error(404, "sweep " + std::to_string(sweep) + ": no such sweep");
  auto cells = CellRows(sweep);
  if (!cells.ok()) return FromStatus(cells.status());
  auto parsed = ParseCells(cells->dump(), "sweep " + std::to_string(sweep));
  if (!parsed.ok()) return FromStatus(parsed.status());
  std::vector<Figure> figures = StudyFigures(*parsed);
  ReportContext context;
  context.title = "sweep " + std::to_string(sweep) + " (live)";
  // Runs without a result yet are named (a cell's n counts finished runs only).
  std::string unfinished;
  int n_unfinished = 0, running = 0;
  for (const JobSummary& j : *jobs) {
    if (j.state == JobState::kSucceeded) continue;
    ++n_unfinished;
    running += j.state == JobState::kRunning;
    if (n_unfinished <= 50) unfinished += (unfinished.empty() ? "" : ", ") + j.name + " (" + JobStateName(j.state) + ")";
  }
  if (n_unfinished > 0) {
    context.notes.push_back(std::to_string(n_unfinished) + " of " + std::to_string(jobs->size()) +
                            " runs have no result yet and are not in the figures: " + unfinished + (n_unfinished > 50 ? ", ..." : ""));
  }
  // Training curves of the finished runs, from their metrics.csv where the coordinator can read it.
  ResultFilter f;
  f.sweep_id = sweep;
  f.kind = TaskKind::kTrain;
  auto trained = reads_->Query(f);
  if (!trained.ok()) return FromStatus(trained.status());
  std::vector<RunCurves> curves;
  int unreadable = 0;
  for (const ResultView& v : *trained) {
    RunCurves run = RunCurvesOf(v.job.experiment.axes, v.job.experiment.model_family, v.job.experiment.dataset);
    auto text = ReadSmallFile(MetricsCsvOf(v.result));
    if (!text.ok() || !ParseMetricsCsv(*text, MetricsCsvOf(v.result), &run).ok()) {
      ++unreadable;
      continue;
    }
    curves.push_back(std::move(run));
  }
  if (unreadable > 0) {
    context.notes.push_back(std::to_string(unreadable) + " run(s)' metrics.csv not readable by the coordinator: their curves are left out");
  }
  for (Figure& fig : CurveFigures(curves)) figures.push_back(std::move(fig));
  // SSM heatmaps: per model, the first sample of its run with the most data (lowest seed), as `cadenza report`
  // shows them; served by /api/v1/artifact (the reference split's needs the dataset, which only the report reads).
  ResultFilter agg;
  agg.sweep_id = sweep;
  agg.kind = TaskKind::kAggregate;
  auto aggregates = reads_->Query(agg);
  if (!aggregates.ok()) return FromStatus(aggregates.status());
  std::map<std::string, const ResultView*> pick;
  auto rank = [](const ResultView& v) {
    auto f = v.job.experiment.axes.find("dataset_fraction");
    return std::make_pair(-(f == v.job.experiment.axes.end() ? 1.0 : std::atof(f->second.c_str())), v.job.experiment.seed);
  };
  for (const ResultView& v : *aggregates) {
    auto m = v.job.experiment.axes.find("model");
    const std::string model = m != v.job.experiment.axes.end() ? m->second : v.job.experiment.model_family;
    if (!pick.count(model) || rank(v) < rank(*pick[model])) pick[model] = &v;
  }
  for (const auto& [model, v] : pick) {
    for (size_t k = 0; k < v->result.artifacts.size(); ++k) {
      if (fs::path(v->result.artifacts[k]).extension() != ".png") continue;
      context.images.push_back({model + ": a sample",
                                "/api/v1/artifact?task=" + std::to_string(v->result.task_id) + "&index=" + std::to_string(k),
                                "run " + v->job.experiment.name + ", seed " + std::to_string(v->job.experiment.seed) + ": its first sample"});
      break;
    }
  }
  context.facts.push_back({"source", "sweep " + std::to_string(sweep) + " of " + options_.source});
  context.facts.push_back({"coordinator commit", GitCommit()});
  context.facts.push_back({"runs", std::to_string(jobs->size()) + " (" + std::to_string(running) + " running)"});
  std::vector<std::map<std::string, std::string>> axes;
  for (const JobSummary& j : *jobs) axes.push_back(j.axes);
  if (!axes.empty()) context.facts.push_back({"sweep axes", AxesSummary(axes)});
  return JsonResponse(ReportData(*cells, figures, context, /*files=*/false));
}

HttpResponse HttpApi::Jobs(const HttpRequest& r) const {
  if (Status s = CheckParams(r, {"sweep", "user", "limit", "offset"}); !s.ok()) return FromStatus(s);
  auto sweep = IntParam(r, "sweep", 0, 0, INT64_MAX);
  auto limit = IntParam(r, "limit", 100, 1, options_.max_page);
  auto offset = IntParam(r, "offset", 0, 0, INT64_MAX);
  for (const Status& s : {sweep.status(), limit.status(), offset.status()}) {
    if (!s.ok()) return FromStatus(s);
  }
  JobQuery q;
  q.sweep_id = *sweep;
  q.user = Param(r, "user");
  q.limit = static_cast<int>(*limit) + 1;  // one more: is there a next page?
  q.offset = *offset;
  auto jobs = reads_->Jobs(q);
  if (!jobs.ok()) return FromStatus(jobs.status());
  const bool more = static_cast<int64_t>(jobs->size()) > *limit;
  if (more) jobs->pop_back();
  json list = json::array();
  for (const JobSummary& j : *jobs) list.push_back(JobJson(j));
  return JsonResponse({{"jobs", list}, {"next_offset", more ? json(*offset + *limit) : json(nullptr)}});
}

HttpResponse HttpApi::Job(int64_t id) const {
  JobQuery q;
  q.job_id = id;
  auto jobs = reads_->Jobs(q);
  if (!jobs.ok()) return FromStatus(jobs.status());
  if (jobs->empty()) return Error(404, "job " + std::to_string(id) + ": no such job");
  return JsonResponse(JobJson(jobs->front()));
}

HttpResponse HttpApi::Series(int64_t id, const HttpRequest& r) const {
  if (Status s = CheckParams(r, {"tag"}); !s.ok()) return FromStatus(s);
  ResultFilter f;
  f.job_id = id;
  f.kind = TaskKind::kTrain;
  auto trained = reads_->Query(f);
  if (!trained.ok()) return FromStatus(trained.status());
  if (trained->empty()) return Error(404, "job " + std::to_string(id) + ": no finished training (series come from its metrics.csv)");
  const std::string csv = MetricsCsvOf(trained->back().result);
  if (csv.empty()) return Error(404, "job " + std::to_string(id) + ": its training result lists no metrics.csv");
  auto text = ReadSmallFile(csv);
  if (!text.ok()) return FromStatus(text.status());
  RunCurves run;
  if (Status s = ParseMetricsCsv(*text, csv, &run); !s.ok()) return FromStatus(s);
  std::set<std::string> wanted;
  for (auto [it, end] = r.query.equal_range("tag"); it != end; ++it) wanted.insert(it->second);
  json series = json::object();
  for (const auto& [tag, points] : run.tags) {
    if (!wanted.empty() && !wanted.count(tag)) continue;
    json list = json::array();
    for (const auto& [step, value] : points) list.push_back({step, value});
    series[tag] = list;
  }
  for (const std::string& w : wanted) {
    if (!series.contains(w)) return Error(404, "job " + std::to_string(id) + ": no series '" + w + "' in " + csv);
  }
  return JsonResponse({{"job", id}, {"series", series}});
}

HttpResponse HttpApi::Artifact(const HttpRequest& r) const {
  if (Status s = CheckParams(r, {"task", "index"}); !s.ok()) return FromStatus(s);
  auto task = IntParam(r, "task", 0, 1, INT64_MAX);
  auto index = IntParam(r, "index", 0, 0, 1000);
  for (const Status& s : {task.status(), index.status()}) {
    if (!s.ok()) return FromStatus(s);
  }
  ResultFilter f;
  f.task_id = *task;
  f.kind = TaskKind::kUnspecified;
  auto rows = reads_->Query(f);
  if (!rows.ok()) return FromStatus(rows.status());
  if (rows->empty()) return Error(404, "task " + std::to_string(*task) + ": no result");
  const std::vector<std::string>& artifacts = rows->front().result.artifacts;
  if (*index >= static_cast<int64_t>(artifacts.size())) {
    return Error(404, "task " + std::to_string(*task) + ": its result lists " + std::to_string(artifacts.size()) + " artifacts");
  }
  const std::string& path = artifacts[*index];
  // Only the pictures a result names: never a path from the request, never another kind of file.
  if (fs::path(path).extension() != ".png") return Error(404, "task " + std::to_string(*task) + ": artifact " + std::to_string(*index) + " is not a PNG");
  auto bytes = ReadSmallFile(path);
  if (!bytes.ok()) return FromStatus(bytes.status());
  HttpResponse out;
  out.content_type = "image/png";
  out.body = std::move(bytes).value();
  return out;
}

HttpResponse HttpApi::Results(const HttpRequest& r) const {
  static const std::map<std::string, TaskKind> kinds = {{"train", TaskKind::kTrain},         {"generate", TaskKind::kGenerate},
                                                        {"evaluate", TaskKind::kEvaluate},   {"aggregate", TaskKind::kAggregate},
                                                        {"score", TaskKind::kScore},         {"probe", TaskKind::kProbe},
                                                        {"all", TaskKind::kUnspecified}};
  if (Status s = CheckParams(r, {"sweep", "job", "kind", "limit", "offset"}); !s.ok()) return FromStatus(s);
  auto sweep = IntParam(r, "sweep", 0, 0, INT64_MAX);
  auto job = IntParam(r, "job", 0, 0, INT64_MAX);
  auto limit = IntParam(r, "limit", 100, 1, options_.max_page);
  auto offset = IntParam(r, "offset", 0, 0, INT64_MAX);
  for (const Status& s : {sweep.status(), job.status(), limit.status(), offset.status()}) {
    if (!s.ok()) return FromStatus(s);
  }
  const std::string kind = Param(r, "kind").empty() ? "all" : Param(r, "kind");
  if (!kinds.count(kind)) {
    return Error(400, "query parameter 'kind': expected train, generate, evaluate, aggregate, score, probe or all, found '" + kind + "'");
  }
  ResultFilter f;
  f.sweep_id = *sweep;
  f.job_id = *job;
  f.kind = kinds.at(kind);
  f.limit = static_cast<int>(*limit) + 1;
  f.offset = *offset;
  auto rows = reads_->Query(f);
  if (!rows.ok()) return FromStatus(rows.status());
  const bool more = static_cast<int64_t>(rows->size()) > *limit;  // the one row past the page
  json list = json::array();
  for (size_t i = 0; i < rows->size() - (more ? 1 : 0); ++i) list.push_back(ResultJson((*rows)[i]));
  return JsonResponse({{"results", list}, {"next_offset", more ? json(*offset + *limit) : json(nullptr)}});
}

}  // namespace cadenza::coord
