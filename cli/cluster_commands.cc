// `cadenza coordinator|submit|status|results|cancel`: the coordinator process and its command-line client.
#include "cli/cluster_commands.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <yaml-cpp/yaml.h>

#include "cli/fail.h"
#include "core/report/report_writer.h"
#include "core/run_layout.h"
#include "coordinator/cell_table.h"
#include "coordinator/client.h"
#include "coordinator/config.h"
#include "coordinator/convert.h"
#include "coordinator/server.h"
#include "coordinator/sweep_file.h"
#include "core/build_info.h"
#include "core/config_overrides.h"
#include "core/experiment_config.h"
#include "core/file_util.h"
#include "core/eval/evaluate.h"
#include "core/eval/piece.h"
#include "core/eval/png.h"
#include "storage/dataset.h"
#include "storage/reference_pieces.h"
#include "core/process_memory.h"

namespace fs = std::filesystem;

namespace cadenza {
namespace {

const char* kDefaultCoordinator = "127.0.0.1:7070";

std::string DefaultTokenFile() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cadenza/token";
}

// Options every client command shares.
struct Connection {
  std::string coordinator;  // empty: $CADENZA_COORDINATOR, else 127.0.0.1:7070
  std::string token_file;   // empty: $CADENZA_TOKEN (the token itself), else ~/.cadenza/token
  std::string tls_ca;       // PEM of the CA that signed the coordinator's certificate; empty: plaintext
  int64_t timeout_ms = 10000;
};

void AddConnectionOptions(CLI::App* cmd, Connection* c) {
  cmd->add_option("--coordinator", c->coordinator,
                  "Coordinator HOST:PORT (default: $CADENZA_COORDINATOR, else " + std::string(kDefaultCoordinator) + ")");
  cmd->add_option("--token-file", c->token_file,
                  "File whose first line is your bearer token (default: $CADENZA_TOKEN holds the token itself, else ~/.cadenza/token)");
  cmd->add_option("--tls-ca", c->tls_ca, "PEM certificate to verify a TLS coordinator with (default: plaintext)")->check(CLI::ExistingFile);
  cmd->add_option("--timeout-ms", c->timeout_ms, "Deadline of each call in milliseconds")->capture_default_str()->check(CLI::Range(1, 3600000));
}

// --coordinator, else $CADENZA_COORDINATOR, else the default.
std::string CoordinatorTarget(const Connection& c) {
  const char* env_target = std::getenv("CADENZA_COORDINATOR");
  return !c.coordinator.empty() ? c.coordinator : (env_target && *env_target ? env_target : kDefaultCoordinator);
}

StatusOr<std::unique_ptr<coord::CoordinatorClient>> Connect(const Connection& c) {
  coord::ClientOptions o;
  o.target = CoordinatorTarget(c);
  const char* env_token = std::getenv("CADENZA_TOKEN");
  if (!c.token_file.empty() || !(env_token && *env_token)) {
    auto token = coord::ReadTokenFile(c.token_file.empty() ? DefaultTokenFile() : c.token_file);
    if (!token.ok()) return token.status().WithContext("--token-file");
    o.token = *token;
  } else {
    o.token = env_token;
  }
  if (!c.tls_ca.empty()) {
    std::ifstream in(c.tls_ca);
    std::stringstream ss;
    ss << in.rdbuf();
    o.tls_root_cert_pem = ss.str();
  }
  o.deadline_ms = c.timeout_ms;
  return coord::CoordinatorClient::Connect(o);
}

// ---- coordinator ----

int RunCoordinator(const std::string& config_path, const std::string& listen, const std::string& database,
                   const std::string& launcher, const std::string& address_file, bool print_config) {
  // Result pages (up to 10,000 rows, ~6 MB decoded) reuse heap pages instead of faulting fresh ones in per query.
  KeepFreedMemoryUpTo(size_t{32} << 20);
  auto config = coord::LoadCoordinatorConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  if (!listen.empty()) config->listen = listen;
  if (!database.empty()) config->database = database;
  if (!launcher.empty()) config->launch.launcher = launcher;
  if (print_config) {  // every key, defaults included, with the flags applied: what this command would run with
    std::cout << config->ToYaml();
    return 0;
  }
  const fs::path db_dir = fs::path(config->database).parent_path();
  std::error_code ec;
  if (!db_dir.empty()) fs::create_directories(db_dir, ec);
  // SIGINT/SIGTERM are taken by a thread with sigwait (every gRPC thread inherits the blocked mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto server = coord::CoordinatorServer::Start(*config);
  if (!server.ok()) return Fail(server.status());
  const std::string host = config->listen.substr(0, config->listen.rfind(':'));
  const auto jobs = (*server)->scheduler().ListJobs({});
  std::cout << "coordinator listening on " << host << ":" << (*server)->port() << " (database " << config->database << ", "
            << jobs.size() << " jobs, " << (*server)->scheduler().NumTasks() << " tasks recovered; "
            << (config->tls_cert.empty() ? "plaintext" : "TLS") << "; worst-case worker failure detection "
            << config->heartbeat.WorstCaseDetectionMs() << " ms)\n";
  if ((*server)->http_port() > 0) {
    std::cout << "coordinator: live page, /api/v1 and /metrics on " << (config->tls_cert.empty() ? "http" : "https") << "://" << host
              << ":" << (*server)->http_port() << "/ (bearer tokens of " << config->tokens_file << "; docs/dashboard.md)\n";
  }
  // Worker groups on demand (launcher: slurm | local; docs/coordinator.md "Launching worker groups").
  auto launch = coord::StartLaunchController(config->launch, config->listen, (*server)->port(), config->database,
                                             config->tokens_file, &(*server)->scheduler(), &(*server)->registry());
  if (!launch.ok()) return Fail(launch.status().WithContext("launcher"));
  (*server)->AttachLauncher(launch->get());
  if (!address_file.empty()) {
    // Where clients and worker groups find this coordinator (a Slurm job's node changes on requeue): host:port.
    std::string where = host;
    if (where.empty() || where == "0.0.0.0" || where == "[::]") {
      char name[256] = {0};
      gethostname(name, sizeof name - 1);
      where = name;
    }
    if (Status st = WriteFileAtomic(address_file, where + ":" + std::to_string((*server)->port()) + "\n"); !st.ok()) return Fail(st);
    std::cout << "coordinator: address written to " << address_file << "\n";
  }
  std::cout << std::flush;
  coord::CoordinatorServer* s = server->get();
  std::thread waiter([s, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::cout << "coordinator: signal " << sig << ", shutting down\n" << std::flush;
    s->Shutdown();
  });
  waiter.detach();
  s->Wait();
  s->AttachLauncher(nullptr);
  launch->reset();  // launched groups keep running: a restarted coordinator finds them (squeue --name)
  return 0;
}

// ---- submit ----

struct SubmitArgs {
  std::string experiment, sweep;
  std::vector<std::string> overrides;  // key=value
  int samples = 8;
  int samples_per_task = 0;
  std::string split = "test";
  bool watch = false;
  bool skip_dataset_check = false;
};

std::string Absolute(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

// Every dataset the submission names must open here with this build's vocabulary: a typo or a stale dataset is
// found before any worker spends time on it (the workers see the same file system).
Status CheckDatasets(const std::vector<std::string>& datasets) {
  std::set<std::string> seen;
  for (const std::string& d : datasets) {
    if (!seen.insert(d).second) continue;
    auto ds = Dataset::Open(d);
    if (!ds.ok()) return ds.status().WithContext("dataset " + d);
  }
  return Status::Ok();
}

int RunSubmit(const Connection& conn, const SubmitArgs& a) {
  auto config = LoadExperimentConfig(a.experiment);
  if (!config.ok()) return Fail(config.status());
  if (!a.overrides.empty()) {
    auto text = ApplyOverrides(config->ToYaml(), a.overrides);
    if (!text.ok()) return Fail(text.status());
    config = ParseExperimentConfig(*text, a.experiment + " (with overrides)");
    if (!config.ok()) return Fail(config.status());
  }
  config->dataset = Absolute(config->dataset);  // the workers see the same file system, not our working directory
  config->out = Absolute(config->out);
  v1::ExperimentSpec spec;
  spec.set_experiment_yaml(config->ToYaml());  // model files inlined: the coordinator reads no files
  spec.set_samples(a.samples);
  spec.set_samples_per_task(a.samples_per_task);
  spec.set_reference_split(a.split);
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
  v1::SubmitResponse resp;
  Status s;
  if (!a.sweep.empty()) {
    auto sweep = coord::LoadSweepFile(a.sweep, coord::FromProto(spec));
    if (!sweep.ok()) return Fail(sweep.status());
    std::vector<std::string> datasets = sweep->datasets.empty() ? std::vector<std::string>{config->dataset} : sweep->datasets;
    const YAML::Node score_on = YAML::Load(sweep->base.experiment_yaml)["score"]["on"];
    if (score_on && score_on.IsSequence()) for (const auto& d : score_on) datasets.push_back(d.as<std::string>());
    if (!a.skip_dataset_check) {
      if (Status c = CheckDatasets(datasets); !c.ok()) return Fail(c);
    }
    v1::SubmitSweepRequest req;
    coord::ToProto(*sweep, req.mutable_sweep());
    s = (*client)->SubmitSweep(req, &resp);
  } else {
    if (!a.skip_dataset_check) {
      if (Status c = CheckDatasets({config->dataset}); !c.ok()) return Fail(c);
    }
    v1::SubmitExperimentRequest req;
    *req.mutable_experiment() = spec;
    s = (*client)->SubmitExperiment(req, &resp);
  }
  if (!s.ok()) return Fail(s);
  if (resp.sweep_id() != 0) std::cout << "sweep " << resp.sweep_id() << ": ";
  std::cout << resp.job_ids_size() << " job(s):";
  for (int64_t id : resp.job_ids()) std::cout << " " << id;
  std::cout << "\n";
  if (!a.watch || resp.job_ids_size() != 1) return 0;
  int rc = 0;
  Status w = (*client)->WatchJob(resp.job_ids(0), [&](const v1::Job& job) {
    std::cout << "job " << job.job_id() << " " << coord::JobStateName(static_cast<coord::JobState>(job.state())) << " "
              << std::fixed << std::setprecision(0) << job.progress() * 100 << "%\n" << std::flush;
    rc = job.state() == v1::JOB_STATE_SUCCEEDED ? 0 : kExitFailure;
    return true;
  });
  return w.ok() ? rc : Fail(w);
}

// ---- status ----

std::string Pct(double f) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(0) << f * 100 << "%";
  return o.str();
}

std::string Done(const v1::Job& j) {
  const v1::TaskCounts& c = j.counts();
  const int total = c.blocked() + c.pending() + c.leased() + c.succeeded() + c.failed() + c.cancelled();
  return std::to_string(c.succeeded()) + "/" + std::to_string(total);
}

const char* StateName(v1::JobState s) { return coord::JobStateName(static_cast<coord::JobState>(s)); }

void PrintJob(const v1::Job& j) {
  std::cout << "job " << j.job_id() << " (" << j.name() << ", user " << j.user() << (j.sweep_id() ? ", sweep " + std::to_string(j.sweep_id()) : "")
            << "): " << StateName(j.state()) << ", " << Pct(j.progress()) << ", tasks done " << Done(j) << "\n"
            << "  " << j.model_family() << " on " << j.dataset() << ", seed " << j.seed() << ", " << j.samples() << " samples -> "
            << j.output_dir() << "\n";
  if (j.axes_size() > 0 || j.parameters() > 0) {
    std::cout << "  cell:";
    for (const auto& [k, v] : std::map<std::string, std::string>(j.axes().begin(), j.axes().end())) std::cout << " " << k << "=" << v;
    std::cout << (j.axes_size() ? "; " : " ") << j.parameters() << " parameters\n";
  }
  if (!j.error().empty()) std::cout << "  error: " << j.error() << "\n";
  std::cout << "  " << std::left << std::setw(8) << "task" << std::setw(11) << "kind" << std::setw(7) << "shard" << std::setw(11) << "state"
            << std::setw(9) << "attempt" << std::setw(8) << "worker" << std::setw(7) << "done" << "message\n";
  for (const v1::TaskStatus& t : j.tasks()) {
    const std::string worker = t.state() == v1::TASK_STATE_LEASED
                                   ? std::to_string(t.worker().group_id()) + "/" + std::to_string(t.worker().rank())
                                   : "-";
    std::cout << "  " << std::setw(8) << t.task_id() << std::setw(11) << coord::TaskKindName(static_cast<coord::TaskKind>(t.kind()))
              << std::setw(7) << t.shard_index() << std::setw(11) << coord::TaskStateName(static_cast<coord::TaskState>(t.state()))
              << std::setw(9) << (std::to_string(t.attempt()) + "/" + std::to_string(t.max_attempts())) << std::setw(8) << worker
              << std::setw(7) << Pct(t.fraction()) << t.message() << "\n";
  }
  std::cout << std::right;
}

int RunStatus(const Connection& conn, int64_t job_id, bool watch, const std::string& user, bool active) {
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
  if (job_id > 0 && watch) {
    int rc = 0;
    Status s = (*client)->WatchJob(job_id, [&](const v1::Job& j) {
      std::cout << "job " << j.job_id() << " " << StateName(j.state()) << " " << Pct(j.progress()) << " tasks done " << Done(j)
                << " (leased " << j.counts().leased() << ", pending " << j.counts().pending() << ")\n" << std::flush;
      rc = j.state() == v1::JOB_STATE_SUCCEEDED ? 0 : kExitFailure;
      return true;
    });
    return s.ok() ? rc : Fail(s);
  }
  if (job_id > 0) {
    v1::Job j;
    if (Status s = (*client)->GetJob(job_id, &j); !s.ok()) return Fail(s);
    PrintJob(j);
    return 0;
  }
  v1::ListJobsRequest req;
  req.set_active_only(active);
  req.set_user(user);
  v1::ListJobsResponse resp;
  if (Status s = (*client)->ListJobs(req, &resp); !s.ok()) return Fail(s);
  int name_width = 36;  // sweep runs have long names: the column grows to fit them
  for (const v1::Job& j : resp.jobs()) name_width = std::max(name_width, static_cast<int>(j.name().size()) + 2);
  std::cout << std::left << std::setw(7) << "job" << std::setw(10) << "user" << std::setw(name_width) << "name" << std::setw(11) << "state"
            << std::setw(6) << "done" << std::setw(9) << "tasks" << "family\n";
  for (const v1::Job& j : resp.jobs()) {
    std::cout << std::setw(7) << j.job_id() << std::setw(10) << j.user() << std::setw(name_width) << j.name() << std::setw(11) << StateName(j.state())
              << std::setw(6) << Pct(j.progress()) << std::setw(9) << Done(j) << j.model_family() << "\n";
  }
  std::cout << std::right;
  if (resp.has_launcher()) {
    const v1::LauncherStatus& l = resp.launcher();
    std::cout << "\nlauncher " << l.kind() << ": " << l.groups_size() << " of at most " << l.max_groups() << " worker group(s)\n";
    for (const v1::LaunchedGroupStatus& g : l.groups()) {
      std::cout << "  " << g.id() << "  " << g.state() << "  " << g.worker_name() << "  " << g.leases() << " task(s)"
                << (g.leases() == 0 && g.idle_ms() > 0 ? ", idle " + std::to_string(g.idle_ms() / 1000) + " s" : "")
                << (g.detail().empty() ? "" : "  (" + g.detail() + ")") << "\n";
    }
    if (l.decisions_size() > 0) std::cout << "recent decisions:\n";
    for (const std::string& d : l.decisions()) std::cout << "  " << d << "\n";
  }
  return 0;
}

// ---- results ----

struct ResultsArgs {
  int64_t job = 0, sweep = 0;
  std::string kind = "aggregate", format = "table", user, dataset, family;
  std::vector<std::string> group_by, metrics;
  bool runs = false;  // --sweep: one row per task result instead of per cell
};

// Prints rows (a header first) as an aligned table, CSV or JSON (a list of objects).
void PrintRows(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows, const std::string& format) {
  if (format == "json") {
    std::cout << coord::RowsJson(header, rows).dump(2) << "\n";
    return;
  }
  if (format == "csv") {
    for (size_t i = 0; i < header.size(); ++i) std::cout << (i ? "," : "") << CsvField(header[i]);
    std::cout << "\n";
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) std::cout << (i ? "," : "") << CsvField(r[i]);
      std::cout << "\n";
    }
    return;
  }
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
  for (const auto& r : rows) for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size(); ++i) std::cout << (i ? "  " : "") << std::left << std::setw(static_cast<int>(w[i])) << r[i];
    std::cout << std::right << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

// One row per sweep cell (every axis but the seed) with n, mean, sd and 95% CI: what `cadenza results --sweep N`
// prints and `cadenza report` draws (coordinator/cell_table.h). No rows: no cell finished.
StatusOr<coord::CellTable> FetchCellTable(coord::CoordinatorClient& client, const ResultsArgs& a) {
  v1::AggregateResultsRequest req = coord::CellRequest(a.sweep, a.user, a.dataset, a.family);
  req.mutable_filter()->set_job_id(a.job);
  v1::AggregateResultsResponse resp;
  if (Status s = client.AggregateResults(req, &resp); !s.ok()) return s;
  return coord::CellTableOf(resp, a.metrics, a.format == "table");
}

// `cadenza results --sweep N`: the cell table.
int RunCellResults(coord::CoordinatorClient& client, const ResultsArgs& a) {
  auto table = FetchCellTable(client, a);
  if (!table.ok()) return Fail(table.status());
  if (table->rows.empty()) {
    std::cerr << "sweep " << a.sweep << ": no finished experiment yet (`cadenza status` shows progress)\n";
    if (a.format != "table") PrintRows({}, {}, a.format);  // an empty list / header-less CSV for scripts
    return 0;
  }
  PrintRows(table->header, table->rows, a.format);
  return 0;
}

int RunResults(const Connection& conn, const ResultsArgs& a) {
  static const std::map<std::string, v1::TaskKind> kinds = {
      {"train", v1::TASK_KIND_TRAIN},         {"generate", v1::TASK_KIND_GENERATE}, {"evaluate", v1::TASK_KIND_EVALUATE},
      {"aggregate", v1::TASK_KIND_AGGREGATE}, {"score", v1::TASK_KIND_SCORE},       {"probe", v1::TASK_KIND_PROBE}};
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
  if (a.sweep > 0 && a.group_by.empty() && !a.runs) return RunCellResults(**client, a);
  v1::QueryResultsRequest q;
  q.set_job_id(a.job);
  q.set_sweep_id(a.sweep);
  q.set_kind(kinds.at(a.kind));
  q.set_user(a.user);
  q.set_dataset(a.dataset);
  q.set_model_family(a.family);
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  if (!a.group_by.empty()) {
    v1::AggregateResultsRequest req;
    *req.mutable_filter() = q;
    for (const auto& g : a.group_by) req.add_group_by(g);
    for (const auto& m : a.metrics) req.add_metrics(m);
    v1::AggregateResultsResponse resp;
    if (Status s = (*client)->AggregateResults(req, &resp); !s.ok()) return Fail(s);
    header = a.group_by;
    header.push_back("n");
    std::set<std::string> names;
    for (const auto& r : resp.rows()) for (const auto& m : r.metrics()) names.insert(m.name());
    for (const auto& n : names) {
      header.push_back(n + "_mean");
      header.push_back(n + "_std");
      header.push_back(n + "_ci95");
    }
    for (const auto& r : resp.rows()) {
      std::vector<std::string> row;
      for (const auto& g : a.group_by) row.push_back(r.group().count(g) ? r.group().at(g) : "");
      row.push_back(std::to_string(r.count()));
      std::map<std::string, const v1::MetricSummary*> by;
      for (const auto& m : r.metrics()) by[m.name()] = &m;
      for (const auto& n : names) {
        row.push_back(by.count(n) ? coord::FormatNumber(by[n]->mean()) : "");
        row.push_back(by.count(n) ? coord::FormatNumber(by[n]->stddev()) : "");
        row.push_back(by.count(n) ? coord::FormatNumber(by[n]->ci95()) : "");
      }
      rows.push_back(std::move(row));
    }
  } else {
    v1::QueryResultsResponse resp;
    q.set_compact(true);  // each job's fields once on the wire, made whole here: the coordinator's work halves
    if (Status s = (*client)->QueryResults(q, &resp); !s.ok()) return Fail(s);
    coord::ExpandCompactResults(&resp);
    std::set<std::string> names;
    for (const auto& r : resp.rows()) for (const auto& [k, v] : r.metrics()) names.insert(k);
    header = {"job", "experiment", "dataset", "family", "seed", "task", "shard"};
    for (const auto& n : names) if (a.metrics.empty() || std::count(a.metrics.begin(), a.metrics.end(), n)) header.push_back(n);
    for (const auto& r : resp.rows()) {
      std::vector<std::string> row = {std::to_string(r.job_id()), r.experiment_name(), r.dataset(), r.model_family(), std::to_string(r.seed()),
                                      std::to_string(r.task_id()), std::to_string(r.shard_index())};
      for (size_t i = 7; i < header.size(); ++i) row.push_back(r.metrics().count(header[i]) ? coord::FormatNumber(r.metrics().at(header[i])) : "");
      rows.push_back(std::move(row));
    }
  }
  PrintRows(header, rows, a.format);
  return 0;
}

struct ReportArgs {
  int64_t sweep = 0, job = 0;
  std::string results_file;  // offline: the output of `cadenza results --sweep N --format json`
  std::string out;
};

// `cadenza report`: the sweep's cells (from the coordinator, or a saved results file) as figures and a page.
// The facts every report ends with: how it was made.
void AddProvenance(ReportContext* context) {
  context->facts.push_back({"cadenza commit", GitCommit()});
  context->facts.push_back({"report made on", MachineDescription()});
  if (!CommandLine().empty()) context->facts.push_back({"command", CommandLine()});
}

// The SSM heatmaps of the report: per model, the first sample of its run with the most data (lowest seed), and
// the first piece of the dataset's test split, as PNGs in <out>/figures/. What cannot be had is a note, not an error.
void AddSsmImages(coord::CoordinatorClient& client, int64_t sweep, int64_t job, const fs::path& out, ReportContext* context) {
  v1::QueryResultsRequest q;
  q.set_sweep_id(sweep);
  q.set_job_id(job);
  q.set_kind(v1::TASK_KIND_AGGREGATE);
  v1::QueryResultsResponse rows;
  if (!client.QueryResults(q, &rows).ok() || rows.rows_size() == 0) return;
  std::map<std::string, const v1::ResultRow*> pick;  // model -> row
  auto rank = [](const v1::ResultRow& r) {
    const double fraction = r.axes().count("dataset_fraction") ? std::atof(r.axes().at("dataset_fraction").c_str()) : 1.0;
    return std::make_pair(-fraction, r.seed());
  };
  for (const auto& r : rows.rows()) {
    const std::string model = r.axes().count("model") ? r.axes().at("model") : r.model_family();
    if (!pick.count(model) || rank(r) < rank(*pick[model])) pick[model] = &r;
  }
  std::error_code ec;
  fs::create_directories(out / "figures", ec);
  std::string dataset;
  int missing = 0;
  for (const auto& [model, r] : pick) {
    std::string png;
    for (const std::string& a : r->artifacts()) {
      if (fs::path(a).extension() == ".png") {
        png = a;
        break;
      }
    }
    const std::string file = "figures/ssm-" + FileSafe(model) + ".png";
    if (png.empty() || !fs::copy_file(png, out / file, fs::copy_options::overwrite_existing, ec)) {
      ++missing;
      continue;
    }
    dataset = r->dataset();
    context->images.push_back({model + ": a sample", file,
                               "run " + r->experiment_name() + ", seed " + std::to_string(r->seed()) + ": its first sample"});
  }
  if (missing > 0) {
    context->notes.push_back(std::to_string(missing) + " model(s) without a sample heatmap readable here (runs made before heatmaps were "
                             "kept, or their files are not visible from this machine)");
  }
  if (dataset.empty()) return;
  auto reference = OpenReferenceSplit(dataset, "test");
  if (!reference.ok() || (*reference)->size() == 0) return;
  auto tokens = (*reference)->Tokens(0);
  if (!tokens.ok()) return;
  auto piece = PieceFromTokens(*tokens);
  if (!piece.ok()) return;
  Ssm ssm;
  EvalOptions options;
  if (!EvaluatePiece(*piece, options, &ssm).ok() || ssm.n == 0) return;
  const std::string file = "figures/ssm-reference.png";
  if (!WritePng((out / file).string(), RenderSsm(ssm, BarGridOfSegments(*piece, options.unit))).ok()) return;
  context->images.push_back({"reference: the test split's first piece", file, (*reference)->Name(0)});
}

}  // namespace

StatusOr<ReportFiles> WriteSweepReport(coord::CoordinatorClient& client, int64_t sweep, int64_t job, const std::string& coordinator,
                                       const std::string& out) {
  ResultsArgs r;
  r.sweep = sweep;
  r.job = job;
  r.format = "json";
  auto table = FetchCellTable(client, r);
  if (!table.ok()) return table.status();
  const std::string cells_json = coord::RowsJson(table->header, table->rows).dump(2) + "\n";
  ReportContext context;
  // The sweep's runs that have no result yet, named on the page (a cell's n counts only finished runs).
  v1::ListJobsResponse jobs;
  if (job > 0) {  // one run: its own job
    if (Status s = client.GetJob(job, jobs.add_jobs()); !s.ok()) return s;
  } else {
    v1::ListJobsRequest lj;
    lj.set_sweep_id(sweep);
    if (Status s = client.ListJobs(lj, &jobs); !s.ok()) return s;
    if (jobs.jobs_size() == 0) return NotFound("sweep " + std::to_string(sweep) + ": no such sweep of yours (`cadenza status` lists your jobs)");
  }
  std::string unfinished;
  int n_unfinished = 0;
  for (const auto& j : jobs.jobs()) {
    if (j.state() == v1::JOB_STATE_SUCCEEDED) continue;
    ++n_unfinished;
    unfinished += (unfinished.empty() ? "" : ", ") + j.name() + " (" + StateName(j.state()) + ")";
  }
  if (n_unfinished > 0) {
    context.notes.push_back(std::to_string(n_unfinished) + " of " + std::to_string(jobs.jobs_size()) +
                            " runs have no result yet and are not in the figures: " + unfinished);
  }
  // Training curves: each finished run's metrics.csv, where this machine sees the workers' files.
  v1::QueryResultsRequest q;
  q.set_sweep_id(sweep);
  q.set_job_id(job);
  q.set_kind(v1::TASK_KIND_TRAIN);
  v1::QueryResultsResponse trained;
  if (Status s = client.QueryResults(q, &trained); !s.ok()) return s;
  std::vector<RunCurves> curves;
  std::vector<std::map<std::string, std::string>> axes;
  int unreadable = 0;
  for (const auto& row : trained.rows()) {
    axes.push_back({row.axes().begin(), row.axes().end()});
    RunCurves run = RunCurvesOf(axes.back(), row.model_family(), row.dataset());
    std::string csv;
    for (const std::string& artifact : row.artifacts()) {
      if (fs::path(artifact).filename() == run_layout::kMetricsCsvName) csv = artifact;
    }
    std::ifstream in(csv);
    if (csv.empty() || !in) {
      ++unreadable;
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    if (Status s = ParseMetricsCsv(text.str(), csv, &run); !s.ok()) return s;
    curves.push_back(std::move(run));
  }
  if (unreadable > 0) {
    context.notes.push_back(std::to_string(unreadable) + " run(s)' metrics.csv not readable from this machine: "
                            "their training curves are left out");
  }
  const std::string source = job > 0 ? "job " + std::to_string(job) : "sweep " + std::to_string(sweep);
  context.title = source;
  context.facts.push_back({"source", source + " of the coordinator at " + coordinator});
  context.facts.push_back({"runs", std::to_string(jobs.jobs_size()) + " (" + std::to_string(trained.rows_size()) + " trained)"});
  if (!axes.empty()) context.facts.push_back({"sweep axes", AxesSummary(axes)});
  AddSsmImages(client, sweep, job, out, &context);
  AddProvenance(&context);
  return WriteReport(cells_json, source, curves, context, out);
}

namespace {

int RunReport(const Connection& conn, const ReportArgs& a) {
  if ((a.sweep > 0) + (a.job > 0) + !a.results_file.empty() != 1) {
    return Fail(InvalidArgument("report: give one of --sweep N, --job N or --results FILE.json"));
  }
  StatusOr<ReportFiles> files = ReportFiles{};
  if (a.sweep > 0 || a.job > 0) {
    auto client = Connect(conn);
    if (!client.ok()) return Fail(client.status());
    files = WriteSweepReport(**client, a.sweep, a.job, CoordinatorTarget(conn), a.out);
  } else {
    std::ifstream in(a.results_file);
    if (!in) return Fail(NotFound(a.results_file + ": cannot read (--results)"));
    std::stringstream ss;
    ss << in.rdbuf();
    ReportContext context;
    context.title = fs::path(a.results_file).filename().string();
    context.facts.push_back({"source", a.results_file});
    context.notes.push_back("Offline (--results): the training curves need the runs' metrics.csv, which only --sweep reads.");
    AddProvenance(&context);
    files = WriteReport(ss.str(), a.results_file, {}, context, a.out);
  }
  if (!files.ok()) return Fail(files.status());
  std::cout << "report: " << files->cells << " cell(s), " << files->figures << " figure(s) -> " << files->index << "\n";
  return 0;
}

int RunCancel(const Connection& conn, int64_t job_id, int64_t sweep_id) {
  if ((job_id > 0) == (sweep_id > 0)) return Fail(InvalidArgument("cancel: give a job id or --sweep N"));
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
  v1::CancelJobRequest req;
  req.set_job_id(job_id);
  req.set_sweep_id(sweep_id);
  v1::CancelJobResponse resp;
  if (Status s = (*client)->CancelJob(req, &resp); !s.ok()) return Fail(s);
  if (sweep_id > 0) {
    std::cout << "sweep " << sweep_id << ": " << resp.jobs_cancelled() << " job(s) cancelled (" << resp.tasks_cancelled() << " tasks)\n";
  } else {
    std::cout << "job " << job_id << ": " << StateName(resp.state()) << " (" << resp.tasks_cancelled() << " tasks cancelled)\n";
  }
  return 0;
}

struct ResubmitArgs {
  std::vector<int64_t> jobs;
  int64_t sweep = 0;
  bool failed_only = false, resume = false;
};

int RunResubmit(const Connection& conn, const ResubmitArgs& a) {
  if (a.jobs.empty() == (a.sweep == 0)) return Fail(InvalidArgument("resubmit: give job ids or --sweep N"));
  if (a.failed_only && a.sweep == 0) return Fail(InvalidArgument("resubmit: --failed-only goes with --sweep"));
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
  v1::ResubmitRequest req;
  for (int64_t j : a.jobs) req.add_job_ids(j);
  req.set_sweep_id(a.sweep);
  req.set_failed_only(a.failed_only);
  req.set_resume(a.resume);
  v1::SubmitResponse resp;
  if (Status s = (*client)->Resubmit(req, &resp); !s.ok()) return Fail(s);
  if (resp.sweep_id() != 0) std::cout << "sweep " << resp.sweep_id() << ": ";
  std::cout << resp.job_ids_size() << " new job(s)" << (a.resume ? " continuing their run folders" : " in fresh run folders") << ":";
  for (int64_t id : resp.job_ids()) std::cout << " " << id;
  std::cout << "\n";
  return 0;
}

}  // namespace

void AddClusterCommands(CLI::App& app, int* exit_code) {
  // Shared by the callbacks below; lives as long as the process.
  static Connection conn;
  static std::string config = "configs/coordinator.yaml", listen, database, launcher, address_file;
  static bool print_config = false;
  auto* coord_cmd = app.add_subcommand("coordinator", "Run the coordinator: gRPC scheduler of experiments over worker groups (docs/coordinator.md)");
  coord_cmd->add_option("--config", config, "Coordinator YAML (every key documented in it)")->capture_default_str()->check(CLI::ExistingFile);
  coord_cmd->add_option("--listen", listen, "Override `listen` (HOST:PORT; port 0 picks a free one, printed)");
  coord_cmd->add_option("--database", database, "Override `database` (SQLite file)");
  coord_cmd->add_option("--launcher", launcher, "Override `launcher` (none, local, slurm): who starts worker groups while tasks wait")
      ->check(CLI::IsMember({"none", "local", "slurm"}));
  coord_cmd->add_option("--address-file", address_file,
                        "Write HOST:PORT here once listening (on shared storage: slurm/coordinator.sbatch, worker groups read it)");
  coord_cmd->add_flag("--print-config", print_config,
                      "Print the effective configuration (every key, defaults included, flags applied) as YAML and exit; "
                      "`cadenza config keys coordinator` explains each key");
  coord_cmd->callback([exit_code] { *exit_code = RunCoordinator(config, listen, database, launcher, address_file, print_config); });

  static SubmitArgs submit;
  auto* submit_cmd = app.add_subcommand("submit", "Submit an experiment (or a sweep over it) to the coordinator; prints the job ids");
  submit_cmd->add_option("experiment", submit.experiment, "Experiment YAML (configs/experiments/*.yaml); dataset and out are taken relative to here")
      ->required()->check(CLI::ExistingFile);
  submit_cmd->add_option("overrides", submit.overrides, "key=value overrides of the experiment (train.steps=300 model.dropout=0.2), validated like the file's keys");
  submit_cmd->add_option("--sweep", submit.sweep,
                         "Sweep YAML (configs/sweeps/): models, dataset_fractions, context_lengths, seeds, grid, budget; "
                         "the cartesian product of its lists, size-matched models (docs/sweeps.md)")->check(CLI::ExistingFile);
  submit_cmd->add_option("--samples", submit.samples, "Samples to generate and evaluate per experiment")->capture_default_str()->check(CLI::Range(1, 100000));
  submit_cmd->add_option("--samples-per-task", submit.samples_per_task, "Samples per generate task (0: one task per live worker rank)")->capture_default_str()->check(CLI::Range(0, 100000));
  submit_cmd->add_option("--split", submit.split, "Dataset split the samples are evaluated against")->capture_default_str()->check(CLI::IsMember({"train", "val", "test"}));
  submit_cmd->add_flag("--skip-dataset-check", submit.skip_dataset_check,
                       "Do not open the datasets here first (they are checked with this build's vocabulary before sending, "
                       "unless this machine does not see the workers' file system)");
  submit_cmd->add_flag("--watch", submit.watch, "Follow the job until it finishes (one experiment only); exit 0 when it succeeded");
  AddConnectionOptions(submit_cmd, &conn);
  submit_cmd->callback([exit_code] { *exit_code = RunSubmit(conn, submit); });

  static int64_t status_job = 0;
  static bool status_watch = false, status_active = false;
  static std::string status_user;
  auto* status_cmd = app.add_subcommand("status", "List jobs, or show one job's tasks and progress (--watch: follow it live)");
  status_cmd->add_option("job", status_job, "Job id (default: list the jobs)")->check(CLI::PositiveNumber);
  status_cmd->add_flag("--watch", status_watch, "Stream the job's progress until it finishes; exit 0 when it succeeded");
  status_cmd->add_flag("--active", status_active, "List only queued and running jobs");
  status_cmd->add_option("--user", status_user, "List only this user's jobs");
  AddConnectionOptions(status_cmd, &conn);
  status_cmd->callback([exit_code] { *exit_code = RunStatus(conn, status_job, status_watch, status_user, status_active); });

  static ReportArgs report;
  auto* report_cmd = app.add_subcommand(
      "report",
      "Write a sweep's comparison as a report folder: index.html (self-contained: opens from disk), the study's\n"
      "figures (NLL against dataset size, latency and memory against context length, sample metrics against\n"
      "dataset size, validation NLL and sample structure against the training step from the runs' metrics.csv;\n"
      "means over seeds with 95% CI bands) as SVG, PNG and the gnuplot script of each, cells.csv and\n"
      "results.json (the numbers of `cadenza results --sweep N --format json`). Needs gnuplot (docs/report.md)");
  report_cmd->add_option("--sweep", report.sweep, "The sweep to report (from the coordinator)")->check(CLI::PositiveNumber);
  report_cmd->add_option("--job", report.job, "One run to report instead (its results, curves and heatmaps)")->check(CLI::PositiveNumber);
  report_cmd->add_option("--results", report.results_file,
                         "Offline: a saved `cadenza results --sweep N --format json` instead of the coordinator")->check(CLI::ExistingFile);
  report_cmd->add_option("--out", report.out, "Report folder (created; files in it are replaced)")->required();
  AddConnectionOptions(report_cmd, &conn);
  report_cmd->callback([exit_code] { *exit_code = RunReport(conn, report); });

  static ResultsArgs results;
  auto* results_cmd = app.add_subcommand("results", "Query recorded results (one row per finished experiment by default), or aggregate them");
  results_cmd->add_option("--job", results.job, "Only this job");
  results_cmd->add_option("--sweep", results.sweep,
                          "This sweep's cells: one row per cell (model, family, parameters, dataset, fraction, context, grid) "
                          "with n runs, mean and 95% CI over seeds (Student t); --runs for one row per result");
  results_cmd->add_flag("--runs", results.runs, "With --sweep: one row per task result (of --kind) instead of per cell");
  results_cmd->add_option("--kind", results.kind, "Results of which task kind")->capture_default_str()->check(CLI::IsMember({"train", "generate", "evaluate", "aggregate", "score", "probe"}));
  results_cmd->add_option("--user", results.user, "Only this user's jobs");
  results_cmd->add_option("--dataset", results.dataset, "Only this dataset (as submitted: absolute path)");
  results_cmd->add_option("--family", results.family, "Only this model family")->check(CLI::IsMember({"transformer", "lstm", "gru"}));
  results_cmd->add_option("--group-by", results.group_by, "Aggregate: mean, std and 95% CI per group of dataset, model_family, seed, experiment, user, sweep, parameters, "
                          "an axis (model, dataset_fraction, context_length, a grid key) or cell (every axis but the seed)")
      ->delimiter(',');
  results_cmd->add_option("--metrics", results.metrics, "Only these metrics (comma separated)")->delimiter(',');
  results_cmd->add_option("--format", results.format, "Output: table, csv or json")->capture_default_str()->check(CLI::IsMember({"table", "csv", "json"}));
  AddConnectionOptions(results_cmd, &conn);
  results_cmd->callback([exit_code] { *exit_code = RunResults(conn, results); });

  static int64_t cancel_job = 0, cancel_sweep = 0;
  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel one of your jobs, or every unfinished job of a sweep (leased tasks are told to stop)");
  cancel_cmd->add_option("job", cancel_job, "Job id")->check(CLI::PositiveNumber);
  cancel_cmd->add_option("--sweep", cancel_sweep, "Cancel every unfinished job of this sweep instead (all must be yours)")->check(CLI::PositiveNumber);
  AddConnectionOptions(cancel_cmd, &conn);
  cancel_cmd->callback([exit_code] { *exit_code = RunCancel(conn, cancel_job, cancel_sweep); });

  static ResubmitArgs resubmit;
  auto* resubmit_cmd = app.add_subcommand(
      "resubmit",
      "Run finished jobs again: the same experiment as a new job of the same sweep, in a fresh run folder (<out>-r2, ...) "
      "or, with --resume, continuing the old folder from its last checkpoint. A sweep's experiments are judged by their "
      "newest job, so resubmitting twice does not duplicate them");
  resubmit_cmd->add_option("jobs", resubmit.jobs, "Job ids (finished: succeeded, failed or cancelled)")->check(CLI::PositiveNumber);
  resubmit_cmd->add_option("--sweep", resubmit.sweep, "Every finished experiment of this sweep instead")->check(CLI::PositiveNumber);
  resubmit_cmd->add_flag("--failed-only", resubmit.failed_only, "With --sweep: only failed and cancelled experiments");
  resubmit_cmd->add_flag("--resume", resubmit.resume, "Continue from the old run folder's checkpoints/latest.pt instead of starting afresh");
  AddConnectionOptions(resubmit_cmd, &conn);
  resubmit_cmd->callback([exit_code] { *exit_code = RunResubmit(conn, resubmit); });
}

}  // namespace cadenza
