// Coordinator configuration (configs/coordinator.yaml): listen address, database, tokens, TLS, liveness, limits,
// launching. Its keys are declared once, in the field table of coordinator/config.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/launch_policy.h"
#include "coordinator/path_policy.h"
#include "coordinator/registry.h"
#include "coordinator/scheduler.h"
#include "core/config_keys.h"
#include "core/status.h"

namespace cadenza::coord {

struct CoordinatorConfig {
  std::string listen = "127.0.0.1:7070";          // host:port; port 0 picks a free port (tests)
  std::string database = "out/coordinator/cadenza.db";
  std::string tokens_file = "configs/tokens.txt";  // "<token> <user>" per line
  std::string tls_cert, tls_key;                   // PEM files; both empty = plaintext
  // The read-only HTTP API, /metrics and the live page (http_api.h). "auto": the gRPC host with the next port
  // (port 0 when gRPC's is 0); "off": none; else host:port. TLS with the same certificate when tls is set.
  std::string http_listen = "auto";
  bool http_public_metrics = false;                // /metrics and /healthz without a token (for a Prometheus scraper)
  PathPolicy paths;                                // `paths.data_roots`, `paths.output_root`: where jobs read and write
  HeartbeatOptions heartbeat;
  SchedulerOptions scheduler;
  int64_t idle_poll_ms = 500;                      // retry_after_ms answered when no task is ready
  int max_receive_message_bytes = 4 << 20;
  int max_send_message_bytes = 16 << 20;
  int max_sweep_experiments = 10000;
  int result_cache_rows = 50000;                   // rows of result pages kept for repeated identical queries; 0: none
  LaunchOptions launch;                            // `launcher:` (none | local | slurm) and `launch.*`: worker groups on demand

  // Every key with its value, from the field table that parses them (coordinator/config.cc): parses back to *this.
  std::string ToYaml() const;
  // http_listen resolved: "" when off.
  std::string HttpAddress() const;
};

// Reads the YAML at `path`; unknown keys and bad values are errors naming the file and key. Relative paths are
// relative to the working directory of the coordinator.
StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path);
StatusOr<CoordinatorConfig> ParseCoordinatorConfig(const std::string& yaml_text, const std::string& path_for_errors);

// Every key of the coordinator's YAML with its type, default, allowed values and doc (`cadenza config keys
// coordinator`), from the same field table.
std::vector<ConfigKeyDoc> CoordinatorConfigKeys();

}  // namespace cadenza::coord
