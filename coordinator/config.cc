// Parses and validates configs/coordinator.yaml (yaml-cpp); every key is checked, errors name file and key.
#include "coordinator/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/yaml_reader.h"

namespace cadenza::coord {
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
  CADENZA_RETURN_IF_ERROR(r.OnlyKeys(root, "", {"listen", "database", "tokens_file", "tls", "http", "paths", "heartbeat", "lease", "limits",
                                           "launcher", "launch"}));
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "listen", &c.listen));
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "database", &c.database));
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "tokens_file", &c.tokens_file));
  if (const YAML::Node tls = root["tls"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(tls, "tls", {"cert", "key"}));
    CADENZA_RETURN_IF_ERROR(r.Get(tls, "tls.", "cert", &c.tls_cert));
    CADENZA_RETURN_IF_ERROR(r.Get(tls, "tls.", "key", &c.tls_key));
  }
  if (const YAML::Node http = root["http"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(http, "http", {"listen", "public_metrics"}));
    CADENZA_RETURN_IF_ERROR(r.Get(http, "http.", "listen", &c.http_listen));
    CADENZA_RETURN_IF_ERROR(r.Get(http, "http.", "public_metrics", &c.http_public_metrics));
  }
  if (const YAML::Node paths = root["paths"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(paths, "paths", {"data_roots", "output_root"}));
    CADENZA_RETURN_IF_ERROR(r.Get(paths, "paths.", "output_root", &c.paths.output_root));
    CADENZA_RETURN_IF_ERROR(r.GetList(paths, "paths.", "data_roots", &c.paths.data_roots));
    for (size_t i = 0; i < c.paths.data_roots.size(); ++i) {
      if (c.paths.data_roots[i].empty() || c.paths.data_roots[i][0] != '/') {
        return r.Error("paths.data_roots[" + std::to_string(i) + "]", "expected an absolute folder, found '" + c.paths.data_roots[i] + "'");
      }
    }
    if (!c.paths.output_root.empty() && c.paths.output_root[0] != '/') {
      return r.Error("paths.output_root", "expected an absolute folder, found '" + c.paths.output_root + "'");
    }
  }
  if (const YAML::Node hb = root["heartbeat"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(hb, "heartbeat", {"period_ms", "failure_threshold", "grace_ms", "reaper_interval_ms"}));
    CADENZA_RETURN_IF_ERROR(r.Get(hb, "heartbeat.", "period_ms", &c.heartbeat.period_ms));
    CADENZA_RETURN_IF_ERROR(r.Get(hb, "heartbeat.", "failure_threshold", &c.heartbeat.failure_threshold));
    CADENZA_RETURN_IF_ERROR(r.Get(hb, "heartbeat.", "grace_ms", &c.heartbeat.grace_ms));
    CADENZA_RETURN_IF_ERROR(r.Get(hb, "heartbeat.", "reaper_interval_ms", &c.heartbeat.reaper_interval_ms));
  }
  if (const YAML::Node lease = root["lease"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(lease, "lease", {"duration_ms", "retry_budget", "idle_poll_ms"}));
    CADENZA_RETURN_IF_ERROR(r.Get(lease, "lease.", "duration_ms", &c.scheduler.lease_ms));
    CADENZA_RETURN_IF_ERROR(r.Get(lease, "lease.", "retry_budget", &c.scheduler.retry_budget));
    CADENZA_RETURN_IF_ERROR(r.Get(lease, "lease.", "idle_poll_ms", &c.idle_poll_ms));
  }
  if (const YAML::Node lim = root["limits"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(lim, "limits", {"max_receive_message_bytes", "max_send_message_bytes", "max_sweep_experiments"}));
    CADENZA_RETURN_IF_ERROR(r.Get(lim, "limits.", "max_receive_message_bytes", &c.max_receive_message_bytes));
    CADENZA_RETURN_IF_ERROR(r.Get(lim, "limits.", "max_send_message_bytes", &c.max_send_message_bytes));
    CADENZA_RETURN_IF_ERROR(r.Get(lim, "limits.", "max_sweep_experiments", &c.max_sweep_experiments));
  }
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "launcher", &c.launch.launcher));
  if (const YAML::Node l = root["launch"]) {
    LaunchOptions& o = c.launch;
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(l, "launch", {"max_groups", "nodes_per_group", "ranks_per_group", "threads_per_rank", "idle_timeout_s",
                                                 "start_timeout_s", "poll_ms", "user", "advertise", "worker", "worker_args", "state_dir",
                                                 "slurm", "local"}));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "max_groups", &o.max_groups));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "nodes_per_group", &o.nodes_per_group));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "ranks_per_group", &o.ranks_per_group));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "threads_per_rank", &o.threads_per_rank));
    double idle_s = o.idle_timeout_ms / 1000.0, start_s = o.start_timeout_ms / 1000.0;
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "idle_timeout_s", &idle_s));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "start_timeout_s", &start_s));
    o.idle_timeout_ms = static_cast<int64_t>(idle_s * 1000);
    o.start_timeout_ms = static_cast<int64_t>(start_s * 1000);
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "poll_ms", &o.poll_ms));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "user", &o.user));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "advertise", &o.advertise));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "worker", &o.worker));
    CADENZA_RETURN_IF_ERROR(r.Get(l, "launch.", "state_dir", &o.state_dir));
    CADENZA_RETURN_IF_ERROR(r.GetList(l, "launch.", "worker_args", &o.worker_args));
    if (const YAML::Node sl = l["slurm"]) {
      CADENZA_RETURN_IF_ERROR(r.OnlyKeys(sl, "launch.slurm", {"script", "job_name", "sbatch_args"}));
      CADENZA_RETURN_IF_ERROR(r.Get(sl, "launch.slurm.", "script", &o.slurm_script));
      CADENZA_RETURN_IF_ERROR(r.Get(sl, "launch.slurm.", "job_name", &o.slurm_job_name));
      CADENZA_RETURN_IF_ERROR(r.GetList(sl, "launch.slurm.", "sbatch_args", &o.sbatch_args));
    }
    if (const YAML::Node lo = l["local"]) {
      CADENZA_RETURN_IF_ERROR(r.OnlyKeys(lo, "launch.local", {"mpirun"}));
      CADENZA_RETURN_IF_ERROR(r.Get(lo, "launch.local.", "mpirun", &o.mpirun));
    }
  }
  if (c.launch.launcher != "none" && c.launch.launcher != "local" && c.launch.launcher != "slurm") {
    return r.Error("launcher", "expected none, local or slurm, found '" + c.launch.launcher + "'");
  }
  if (c.launch.max_groups < 1) return r.Error("launch.max_groups", "expected >= 1");
  if (c.launch.nodes_per_group < 1) return r.Error("launch.nodes_per_group", "expected >= 1");
  if (c.launch.ranks_per_group < c.launch.nodes_per_group) return r.Error("launch.ranks_per_group", "expected >= nodes_per_group");
  if (c.launch.threads_per_rank < 1) return r.Error("launch.threads_per_rank", "expected >= 1");
  if (c.launch.idle_timeout_ms < 0) return r.Error("launch.idle_timeout_s", "expected >= 0");
  if (c.launch.start_timeout_ms < 1000) return r.Error("launch.start_timeout_s", "expected >= 1");
  if (c.launch.poll_ms < 10) return r.Error("launch.poll_ms", "expected >= 10");
  if (c.launch.slurm_job_name.empty()) return r.Error("launch.slurm.job_name", "expected a name (squeue finds the groups by it)");
  if (c.listen.empty() || c.listen.find(':') == std::string::npos) return r.Error("listen", "expected host:port");
  if (c.http_listen != "auto" && c.http_listen != "off" && c.http_listen.find(':') == std::string::npos) {
    return r.Error("http.listen", "expected auto, off or host:port, found '" + c.http_listen + "'");
  }
  if (c.database.empty()) return r.Error("database", "required: the SQLite file of the coordinator's state");
  if (c.tokens_file.empty()) return r.Error("tokens_file", "required: every RPC needs a bearer token");
  if (c.tls_cert.empty() != c.tls_key.empty()) return r.Error("tls", "set both cert and key, or neither (plaintext)");
  if (c.heartbeat.period_ms < 1) return r.Error("heartbeat.period_ms", "expected >= 1");
  if (c.heartbeat.failure_threshold < 1) return r.Error("heartbeat.failure_threshold", "expected >= 1");
  if (c.heartbeat.grace_ms < 0) return r.Error("heartbeat.grace_ms", "expected >= 0");
  if (c.heartbeat.reaper_interval_ms < 1) return r.Error("heartbeat.reaper_interval_ms", "expected >= 1");
  if (c.scheduler.lease_ms < 1) return r.Error("lease.duration_ms", "expected >= 1");
  if (c.scheduler.retry_budget < 0 || c.scheduler.retry_budget > 100) return r.Error("lease.retry_budget", "expected 0..100");
  if (c.idle_poll_ms < 1) return r.Error("lease.idle_poll_ms", "expected >= 1");
  if (c.max_receive_message_bytes < 1024) return r.Error("limits.max_receive_message_bytes", "expected >= 1024");
  if (c.max_send_message_bytes < 1024) return r.Error("limits.max_send_message_bytes", "expected >= 1024");
  if (c.max_sweep_experiments < 1) return r.Error("limits.max_sweep_experiments", "expected >= 1");
  return c;
}

StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path + ": cannot read the coordinator config");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseCoordinatorConfig(ss.str(), path);
}

std::string CoordinatorConfig::ToYaml() const {
  std::ostringstream o;
  o << "listen: " << listen << "\ndatabase: " << database << "\ntokens_file: " << tokens_file << "\ntls: {cert: \"" << tls_cert
    << "\", key: \"" << tls_key << "\"}\nhttp: {listen: \"" << http_listen << "\", public_metrics: " << (http_public_metrics ? "true" : "false")
    << "}\npaths: {data_roots: [" << [&] {
         std::string r;
         for (const std::string& d : paths.data_roots) r += (r.empty() ? "\"" : ", \"") + d + "\"";
         return r;
       }() << "], output_root: \"" << paths.output_root << "\"}\nheartbeat: {period_ms: " << heartbeat.period_ms
    << ", failure_threshold: " << heartbeat.failure_threshold << ", grace_ms: " << heartbeat.grace_ms
    << ", reaper_interval_ms: " << heartbeat.reaper_interval_ms << "}\nlease: {duration_ms: " << scheduler.lease_ms
    << ", retry_budget: " << scheduler.retry_budget << ", idle_poll_ms: " << idle_poll_ms
    << "}\nlimits: {max_receive_message_bytes: " << max_receive_message_bytes
    << ", max_send_message_bytes: " << max_send_message_bytes << ", max_sweep_experiments: " << max_sweep_experiments << "}\n";
  o << "launcher: " << launch.launcher << "\nlaunch: {max_groups: " << launch.max_groups << ", nodes_per_group: " << launch.nodes_per_group
    << ", ranks_per_group: " << launch.ranks_per_group << ", threads_per_rank: " << launch.threads_per_rank
    << ", idle_timeout_s: " << launch.idle_timeout_ms / 1000.0 << ", start_timeout_s: " << launch.start_timeout_ms / 1000.0
    << ", poll_ms: " << launch.poll_ms << ", user: \"" << launch.user << "\", advertise: \"" << launch.advertise << "\", worker: \""
    << launch.worker << "\", state_dir: \"" << launch.state_dir << "\", slurm: {script: \"" << launch.slurm_script << "\", job_name: \""
    << launch.slurm_job_name << "\"}, local: {mpirun: \"" << launch.mpirun << "\"}}\n";
  return o.str();
}

std::string CoordinatorConfig::HttpAddress() const {
  if (http_listen == "off") return "";
  if (http_listen != "auto") return http_listen;
  const size_t colon = listen.rfind(':');
  const int port = std::atoi(listen.c_str() + colon + 1);
  return listen.substr(0, colon) + ":" + std::to_string(port == 0 ? 0 : port + 1);
}

}  // namespace cadenza::coord
