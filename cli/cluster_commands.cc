// `cadenza coordinator|submit|status|results|cancel`: the coordinator process and its command-line client.
#include "cli/cluster_commands.h"

#include <signal.h>

#include <algorithm>
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

#include "coordinator/client.h"
#include "coordinator/config.h"
#include "coordinator/server.h"
#include "core/experiment_config.h"

namespace fs = std::filesystem;

namespace cadenza {
namespace {

constexpr int kExitFailure = 1;

int Fail(const Status& s) {
  std::cerr << "cadenza: error: " << s.message() << "\n";
  return kExitFailure;
}

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

StatusOr<std::unique_ptr<coord::CoordinatorClient>> Connect(const Connection& c) {
  coord::ClientOptions o;
  const char* env_target = std::getenv("CADENZA_COORDINATOR");
  o.target = !c.coordinator.empty() ? c.coordinator : (env_target && *env_target ? env_target : kDefaultCoordinator);
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

int RunCoordinator(const std::string& config_path, const std::string& listen, const std::string& database) {
  auto config = coord::LoadCoordinatorConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  if (!listen.empty()) config->listen = listen;
  if (!database.empty()) config->database = database;
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
            << config->heartbeat.WorstCaseDetectionMs() << " ms)\n"
            << std::flush;
  coord::CoordinatorServer* s = server->get();
  std::thread waiter([s, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::cout << "coordinator: signal " << sig << ", shutting down\n" << std::flush;
    s->Shutdown();
  });
  waiter.detach();
  s->Wait();
  return 0;
}

// ---- submit ----

struct SubmitArgs {
  std::string experiment, sweep;
  int samples = 8;
  int samples_per_task = 0;
  std::string split = "test";
  bool watch = false;
};

std::string Absolute(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

// Reads the sweep YAML: name, datasets, model_families, seeds (lists; any may be absent).
Status ReadSweep(const std::string& path, v1::SweepSpec* sweep) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": " + e.what());
  }
  if (!root.IsMap()) return InvalidArgument(path + ": expected a mapping with datasets, model_families and/or seeds");
  static const std::set<std::string> keys = {"name", "datasets", "model_families", "seeds"};
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (!keys.count(k)) return InvalidArgument(path + ": " + k + ": unknown key (expected name, datasets, model_families, seeds)");
    if (k != "name" && !kv.second.IsSequence()) return InvalidArgument(path + ": " + k + ": expected a list");
  }
  try {
    if (root["name"]) sweep->set_name(root["name"].as<std::string>());
    for (const auto& d : root["datasets"]) sweep->add_datasets(Absolute(d.as<std::string>()));
    for (const auto& f : root["model_families"]) sweep->add_model_families(f.as<std::string>());
    for (const auto& s : root["seeds"]) sweep->add_seeds(s.as<uint64_t>());
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": " + e.what());
  }
  return Status::Ok();
}

int RunSubmit(const Connection& conn, const SubmitArgs& a) {
  auto config = LoadExperimentConfig(a.experiment);
  if (!config.ok()) return Fail(config.status());
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
    v1::SubmitSweepRequest req;
    *req.mutable_sweep()->mutable_base() = spec;
    if (Status r = ReadSweep(a.sweep, req.mutable_sweep()); !r.ok()) return Fail(r);
    s = (*client)->SubmitSweep(req, &resp);
  } else {
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
  std::cout << std::left << std::setw(7) << "job" << std::setw(10) << "user" << std::setw(36) << "name" << std::setw(11) << "state"
            << std::setw(6) << "done" << std::setw(9) << "tasks" << "family\n";
  for (const v1::Job& j : resp.jobs()) {
    std::cout << std::setw(7) << j.job_id() << std::setw(10) << j.user() << std::setw(36) << j.name() << std::setw(11) << StateName(j.state())
              << std::setw(6) << Pct(j.progress()) << std::setw(9) << Done(j) << j.model_family() << "\n";
  }
  std::cout << std::right;
  return 0;
}

// ---- results ----

struct ResultsArgs {
  int64_t job = 0, sweep = 0;
  std::string kind = "aggregate", format = "table", user, dataset, family;
  std::vector<std::string> group_by, metrics;
};

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::string Num(double x) {
  std::ostringstream o;
  o << std::setprecision(6) << x;
  return o.str();
}

// Prints rows (a header first) as an aligned table, CSV or JSON (a list of objects).
void PrintRows(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows, const std::string& format) {
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json o;
      for (size_t i = 0; i < header.size(); ++i) {
        char* end = nullptr;
        const double v = std::strtod(r[i].c_str(), &end);
        if (!r[i].empty() && end && *end == '\0') o[header[i]] = v;
        else o[header[i]] = r[i];
      }
      out.push_back(o);
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  if (format == "csv") {
    for (size_t i = 0; i < header.size(); ++i) std::cout << (i ? "," : "") << Csv(header[i]);
    std::cout << "\n";
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) std::cout << (i ? "," : "") << Csv(r[i]);
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

int RunResults(const Connection& conn, const ResultsArgs& a) {
  static const std::map<std::string, v1::TaskKind> kinds = {
      {"train", v1::TASK_KIND_TRAIN}, {"generate", v1::TASK_KIND_GENERATE}, {"evaluate", v1::TASK_KIND_EVALUATE}, {"aggregate", v1::TASK_KIND_AGGREGATE}};
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
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
    }
    for (const auto& r : resp.rows()) {
      std::vector<std::string> row;
      for (const auto& g : a.group_by) row.push_back(r.group().count(g) ? r.group().at(g) : "");
      row.push_back(std::to_string(r.count()));
      std::map<std::string, const v1::MetricSummary*> by;
      for (const auto& m : r.metrics()) by[m.name()] = &m;
      for (const auto& n : names) {
        row.push_back(by.count(n) ? Num(by[n]->mean()) : "");
        row.push_back(by.count(n) ? Num(by[n]->stddev()) : "");
      }
      rows.push_back(std::move(row));
    }
  } else {
    v1::QueryResultsResponse resp;
    if (Status s = (*client)->QueryResults(q, &resp); !s.ok()) return Fail(s);
    std::set<std::string> names;
    for (const auto& r : resp.rows()) for (const auto& [k, v] : r.metrics()) names.insert(k);
    header = {"job", "experiment", "dataset", "family", "seed", "task", "shard"};
    for (const auto& n : names) if (a.metrics.empty() || std::count(a.metrics.begin(), a.metrics.end(), n)) header.push_back(n);
    for (const auto& r : resp.rows()) {
      std::vector<std::string> row = {std::to_string(r.job_id()), r.experiment_name(), r.dataset(), r.model_family(), std::to_string(r.seed()),
                                      std::to_string(r.task_id()), std::to_string(r.shard_index())};
      for (size_t i = 7; i < header.size(); ++i) row.push_back(r.metrics().count(header[i]) ? Num(r.metrics().at(header[i])) : "");
      rows.push_back(std::move(row));
    }
  }
  PrintRows(header, rows, a.format);
  return 0;
}

int RunCancel(const Connection& conn, int64_t job_id) {
  auto client = Connect(conn);
  if (!client.ok()) return Fail(client.status());
  v1::CancelJobResponse resp;
  if (Status s = (*client)->CancelJob(job_id, &resp); !s.ok()) return Fail(s);
  std::cout << "job " << job_id << ": " << StateName(resp.state()) << " (" << resp.tasks_cancelled() << " tasks cancelled)\n";
  return 0;
}

}  // namespace

void AddClusterCommands(CLI::App& app, int* exit_code) {
  // Shared by the callbacks below; lives as long as the process.
  static Connection conn;
  static std::string config = "configs/coordinator.yaml", listen, database;
  auto* coord_cmd = app.add_subcommand("coordinator", "Run the coordinator: gRPC scheduler of experiments over worker groups (docs/coordinator.md)");
  coord_cmd->add_option("--config", config, "Coordinator YAML (every key documented in it)")->capture_default_str()->check(CLI::ExistingFile);
  coord_cmd->add_option("--listen", listen, "Override `listen` (HOST:PORT; port 0 picks a free one, printed)");
  coord_cmd->add_option("--database", database, "Override `database` (SQLite file)");
  coord_cmd->callback([exit_code] { *exit_code = RunCoordinator(config, listen, database); });

  static SubmitArgs submit;
  auto* submit_cmd = app.add_subcommand("submit", "Submit an experiment (or a sweep over it) to the coordinator; prints the job ids");
  submit_cmd->add_option("experiment", submit.experiment, "Experiment YAML (configs/experiments/*.yaml); dataset and out are taken relative to here")
      ->required()->check(CLI::ExistingFile);
  submit_cmd->add_option("--sweep", submit.sweep, "Sweep YAML: lists datasets, model_families, seeds (cartesian product) and a name")->check(CLI::ExistingFile);
  submit_cmd->add_option("--samples", submit.samples, "Samples to generate and evaluate per experiment")->capture_default_str()->check(CLI::Range(1, 100000));
  submit_cmd->add_option("--samples-per-task", submit.samples_per_task, "Samples per generate task (0: one task per live worker rank)")->capture_default_str()->check(CLI::Range(0, 100000));
  submit_cmd->add_option("--split", submit.split, "Dataset split the samples are evaluated against")->capture_default_str()->check(CLI::IsMember({"train", "val", "test"}));
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

  static ResultsArgs results;
  auto* results_cmd = app.add_subcommand("results", "Query recorded results (one row per finished experiment by default), or aggregate them");
  results_cmd->add_option("--job", results.job, "Only this job");
  results_cmd->add_option("--sweep", results.sweep, "Only this sweep");
  results_cmd->add_option("--kind", results.kind, "Results of which task kind")->capture_default_str()->check(CLI::IsMember({"train", "generate", "evaluate", "aggregate"}));
  results_cmd->add_option("--user", results.user, "Only this user's jobs");
  results_cmd->add_option("--dataset", results.dataset, "Only this dataset (as submitted: absolute path)");
  results_cmd->add_option("--family", results.family, "Only this model family")->check(CLI::IsMember({"transformer", "lstm", "gru"}));
  results_cmd->add_option("--group-by", results.group_by, "Aggregate: mean and std per group of dataset, model_family, seed, experiment, user, sweep")
      ->delimiter(',');
  results_cmd->add_option("--metrics", results.metrics, "Only these metrics (comma separated)")->delimiter(',');
  results_cmd->add_option("--format", results.format, "Output: table, csv or json")->capture_default_str()->check(CLI::IsMember({"table", "csv", "json"}));
  AddConnectionOptions(results_cmd, &conn);
  results_cmd->callback([exit_code] { *exit_code = RunResults(conn, results); });

  static int64_t cancel_job = 0;
  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel one of your jobs (its leased tasks are told to stop)");
  cancel_cmd->add_option("job", cancel_job, "Job id")->required()->check(CLI::PositiveNumber);
  AddConnectionOptions(cancel_cmd, &conn);
  cancel_cmd->callback([exit_code] { *exit_code = RunCancel(conn, cancel_job); });
}

}  // namespace cadenza
