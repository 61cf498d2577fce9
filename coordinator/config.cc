// Parses, validates and dumps configs/coordinator.yaml from one field table (every key declared once, with its type,
// default, range and doc); errors name file and key.
#include "coordinator/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/config_fields.h"
#include "core/yaml_reader.h"

namespace cadenza::coord {
namespace {

using CoordinatorTable = ConfigTable<CoordinatorConfig>;

// Every key of configs/coordinator.yaml, in the order they are dumped (sections nest by their dotted names).
const CoordinatorTable& CoordinatorFields() {
  static const CoordinatorTable table = [] {
    using C = CoordinatorConfig;
    using H = HeartbeatOptions;
    using L = LaunchOptions;
    CoordinatorTable t;
    t.Text("listen", Member(&C::listen), "host:port to serve gRPC on; 0.0.0.0 for every interface, port 0 picks a free port");
    t.Text("database", Member(&C::database), "required: the SQLite file of jobs, tasks, results and worker groups (created when absent)");
    t.Text("tokens_file", Member(&C::tokens_file),
           "required: lines \"<token> <user> [role]\" (configs/tokens.example.txt); every RPC needs a bearer token");
    t.Text("tls.cert", Member(&C::tls_cert), "PEM certificate chain; set with tls.key, or neither (plaintext: loopback only)");
    t.Text("tls.key", Member(&C::tls_key), "PEM private key of tls.cert");
    t.Text("http.listen", Member(&C::http_listen),
           "the HTTP API, /metrics and the live page: auto (the gRPC host and the next port), off, or host:port");
    t.Flag("http.public_metrics", Member(&C::http_public_metrics), "/metrics and /healthz without a token (for a Prometheus scraper)");
    t.TextList("paths.data_roots", Member(&C::paths, &PathPolicy::data_roots),
               "absolute folders a submitted dataset (and score.on's) must lie in; empty = anywhere");
    t.Text("paths.output_root", Member(&C::paths, &PathPolicy::output_root), "absolute folder run folders must lie inside; empty = anywhere");
    t.Number("heartbeat.period_ms", Member(&C::heartbeat, &H::period_ms), AtLeast(1), "workers send a heartbeat per rank this often");
    t.Number("heartbeat.failure_threshold", Member(&C::heartbeat, &H::failure_threshold), AtLeast(1), "missed periods before a rank is dead");
    t.Number("heartbeat.grace_ms", Member(&C::heartbeat, &H::grace_ms), AtLeast(0), "network and scheduling slack on top of the missed periods");
    t.Number("heartbeat.reaper_interval_ms", Member(&C::heartbeat, &H::reaper_interval_ms), AtLeast(1),
             "how often dead ranks and expired leases are looked for");
    t.Number("lease.duration_ms", Member(&C::scheduler, &SchedulerOptions::lease_ms), AtLeast(1),
             "a lease lasts this long after the holder's last heartbeat or progress report");
    t.Number("lease.retry_budget", Member(&C::scheduler, &SchedulerOptions::retry_budget), Between(0, 100),
             "a task is attempted at most 1 + retry_budget times, then its job fails");
    t.Number("lease.idle_poll_ms", Member(&C::idle_poll_ms), AtLeast(1), "LeaseTask with nothing ready answers \"retry after\" this long");
    t.Number("limits.max_receive_message_bytes", Member(&C::max_receive_message_bytes), AtLeast(1024),
             "largest request (experiment YAML, sweep lists, results)");
    t.Number("limits.max_send_message_bytes", Member(&C::max_send_message_bytes), AtLeast(1024), "largest response (job lists, result queries)");
    t.Number("limits.max_sweep_experiments", Member(&C::max_sweep_experiments), AtLeast(1),
             "largest cartesian product one SubmitSweep may expand to");
    t.Number("limits.result_cache_rows", Member(&C::result_cache_rows), AtLeast(0),
             "result rows kept in pages for repeated identical queries (dashboards polling); a page goes when a job it reaches is written; 0: none");
    t.Text("launcher", Member(&C::launch, &L::launcher),
           "who starts worker groups: nobody, mpirun groups on this machine, or sbatch (`cadenza coordinator --launcher` overrides it)",
           {"none", "local", "slurm"});
    t.Number("launch.max_groups", Member(&C::launch, &L::max_groups), AtLeast(1), "groups alive at once (queued in Slurm, starting, or running)");
    t.Number("launch.nodes_per_group", Member(&C::launch, &L::nodes_per_group), AtLeast(1), "sbatch --nodes");
    // Its bound is another key's value: checked after the table (expected >= nodes_per_group).
    t.Number("launch.ranks_per_group", Member(&C::launch, &L::ranks_per_group), NumberRange(),
             "sbatch --ntasks (mpirun -np for local): one cadenza-worker rank each; >= nodes_per_group");
    t.Number("launch.threads_per_rank", Member(&C::launch, &L::threads_per_rank), AtLeast(1), "sbatch --cpus-per-task and the ranks' --threads");
    t.Seconds("launch.idle_timeout_s", Member(&C::launch, &L::idle_timeout_ms), AtLeast(0),
              "a registered group whose ranks held no task this long is cancelled");
    t.Seconds("launch.start_timeout_s", Member(&C::launch, &L::start_timeout_ms), AtLeast(1),
              "a group running this long without registering is cancelled (wrong address, bad token)");
    t.Number("launch.poll_ms", Member(&C::launch, &L::poll_ms), AtLeast(10), "how often the launcher looks (one squeue) and decides");
    t.Text("launch.user", Member(&C::launch, &L::user),
           "the groups use this user's worker (else admin) token from tokens_file; empty: the first worker token of anyone");
    t.Text("launch.advertise", Member(&C::launch, &L::advertise), "host:port the ranks dial; empty: `listen` (0.0.0.0: this host's name)");
    t.Text("launch.worker", Member(&C::launch, &L::worker),
           "cadenza-worker binary; empty: $CADENZA_WORKER, else the one beside `cadenza`, else PATH");
    t.TextList("launch.worker_args", Member(&C::launch, &L::worker_args), "more cadenza-worker options, e.g. [--max-tokens, \"1500\", --wav]");
    t.Text("launch.state_dir", Member(&C::launch, &L::state_dir),
           "the worker token and the groups' logs; empty: <database>.launch/. Shared storage for slurm");
    t.Text("launch.slurm.script", Member(&C::launch, &L::slurm_script), "the sbatch script, taking HOST:PORT TOKEN_FILE [worker options]");
    t.Text("launch.slurm.job_name", Member(&C::launch, &L::slurm_job_name),
           "squeue --me --name finds this coordinator's groups by it (also after a restart): one per coordinator of a user");
    t.TextList("launch.slurm.sbatch_args", Member(&C::launch, &L::sbatch_args), "more sbatch options, e.g. [--partition=cpu, --time=04:00:00]");
    t.Text("launch.local.mpirun", Member(&C::launch, &L::mpirun), "the mpirun that starts local groups");
    return t;
  }();
  return table;
}

}  // namespace

StatusOr<CoordinatorConfig> ParseCoordinatorConfig(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  CoordinatorConfig c;
  if (root.IsNull()) return c;
  YamlReader r(path);
  CADENZA_RETURN_IF_ERROR(CoordinatorFields().ReadTree("", r, root, &c));
  CADENZA_RETURN_IF_ERROR(CoordinatorFields().CheckAll(c, [&](const std::string& key, const std::string& what) { return r.Error(key, what); }));
  // What one key's range cannot say: formats, and rules between keys.
  for (size_t i = 0; i < c.paths.data_roots.size(); ++i) {
    if (c.paths.data_roots[i].empty() || c.paths.data_roots[i][0] != '/') {
      return r.Error("paths.data_roots[" + std::to_string(i) + "]", "expected an absolute folder, found '" + c.paths.data_roots[i] + "'");
    }
  }
  if (!c.paths.output_root.empty() && c.paths.output_root[0] != '/') {
    return r.Error("paths.output_root", "expected an absolute folder, found '" + c.paths.output_root + "'");
  }
  if (c.launch.ranks_per_group < c.launch.nodes_per_group) return r.Error("launch.ranks_per_group", "expected >= nodes_per_group");
  if (c.launch.slurm_job_name.empty()) return r.Error("launch.slurm.job_name", "expected a name (squeue finds the groups by it)");
  if (c.listen.empty() || c.listen.find(':') == std::string::npos) return r.Error("listen", "expected host:port");
  if (c.http_listen != "auto" && c.http_listen != "off" && c.http_listen.find(':') == std::string::npos) {
    return r.Error("http.listen", "expected auto, off or host:port, found '" + c.http_listen + "'");
  }
  if (c.database.empty()) return r.Error("database", "required: the SQLite file of the coordinator's state");
  if (c.tokens_file.empty()) return r.Error("tokens_file", "required: every RPC needs a bearer token");
  if (c.tls_cert.empty() != c.tls_key.empty()) return r.Error("tls", "set both cert and key, or neither (plaintext)");
  return c;
}

std::vector<ConfigKeyDoc> CoordinatorConfigKeys() { return CoordinatorFields().Docs(CoordinatorConfig()); }

StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path + ": cannot read the coordinator config");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseCoordinatorConfig(ss.str(), path);
}

std::string CoordinatorConfig::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  CoordinatorFields().EmitTree("", *this, e);
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::string CoordinatorConfig::HttpAddress() const {
  if (http_listen == "off") return "";
  if (http_listen != "auto") return http_listen;
  const size_t colon = listen.rfind(':');
  const int port = std::atoi(listen.c_str() + colon + 1);
  return listen.substr(0, colon) + ":" + std::to_string(port == 0 ? 0 : port + 1);
}

}  // namespace cadenza::coord
