// TokenAuth and the coordinator config: tokens file parsing, bearer checks, config keys and ranges, the field table
// (round trip through ToYaml, the key list).
#include "coordinator/auth.h"

#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "coordinator/config.h"
#include "tests/support/yaml_keys.h"

namespace cadenza::coord {
namespace {

TEST(AuthTest, MapsTokensToUsers) {
  auto a = TokenAuth::Parse("# tokens\n\nsecret-alice-1 alice\nsecret-bob-22 bob\n", "tokens.txt");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->size(), 2u);
  EXPECT_EQ(a->Authenticate("Bearer secret-alice-1")->user, "alice");
  EXPECT_EQ(a->Authenticate("Bearer secret-bob-22")->user, "bob");
  EXPECT_EQ(a->Authenticate("Bearer secret-bob-22")->role, Role::kUser) << "the old two-column form means user";
  EXPECT_EQ(a->Authenticate("").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(a->Authenticate("Bearer nope-nope-nope").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(a->Authenticate("secret-alice-1").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(a->Authenticate("Basic secret-alice-1").status().code(), StatusCode::kUnauthenticated);
}

TEST(AuthTest, ATokensThirdColumnIsItsRole) {
  auto a = TokenAuth::Parse("secret-alice-1 alice user\nsecret-rank-22 cluster worker\nsecret-root-33 root admin\n", "tokens.txt");
  ASSERT_TRUE(a.ok()) << a.status().message();
  const Principal alice = *a->Authenticate("Bearer secret-alice-1");
  const Principal worker = *a->Authenticate("Bearer secret-rank-22");
  const Principal root = *a->Authenticate("Bearer secret-root-33");
  EXPECT_EQ(alice.role, Role::kUser);
  EXPECT_EQ(worker.role, Role::kWorker);
  EXPECT_EQ(worker.user, "cluster");
  EXPECT_TRUE(root.admin());
  EXPECT_TRUE(RequireRole(alice, {Role::kUser}, "SubmitExperiment").ok());
  EXPECT_TRUE(RequireRole(root, {Role::kUser}, "SubmitExperiment").ok());
  EXPECT_TRUE(RequireRole(root, {Role::kWorker}, "LeaseTask").ok());
  Status s = RequireRole(worker, {Role::kUser}, "SubmitExperiment");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "SubmitExperiment needs a user or admin token; this token (user 'cluster') has role worker");
  s = RequireRole(alice, {Role::kWorker}, "LeaseTask");
  EXPECT_EQ(s.message(), "LeaseTask needs a worker or admin token; this token (user 'alice') has role user");
}

TEST(AuthTest, AFileWithoutAWorkerTokenLoadsWithAWarning) {
  const std::string path = ::testing::TempDir() + "/cadenza-auth-test-tokens.txt";
  std::ofstream(path) << "secret-alice-1 alice\n";
  ::testing::internal::CaptureStderr();
  auto a = TokenAuth::Load(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_FALSE(a->AnyWorkerToken());
  EXPECT_NE(err.find("warning: " + path + " has no token of role worker or admin: no worker group can register"), std::string::npos) << err;
  std::ofstream(path) << "secret-alice-1 alice\nsecret-rank-22 cluster worker\n";
  ::testing::internal::CaptureStderr();
  a = TokenAuth::Load(path);
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("no token of role worker"), std::string::npos);
  EXPECT_TRUE(a->AnyWorkerToken());
  std::remove(path.c_str());
}

TEST(AuthTest, RejectsBadTokenFiles) {
  EXPECT_EQ(TokenAuth::Parse("onlytoken12\n", "t").status().message(), "t: line 1: expected '<token> <user> [role]'");
  EXPECT_EQ(TokenAuth::Parse("abcdefgh u root\n", "t").status().message(),
            "t: line 1: role: expected user, worker or admin, found 'root'");
  EXPECT_EQ(TokenAuth::Parse("abcdefgh u worker x\n", "t").status().message(),
            "t: line 1: expected '<token> <user> [role]', found more fields");
  EXPECT_EQ(TokenAuth::Parse("short u\n", "t").status().message(), "t: line 1: token too short (expected >= 8 characters)");
  EXPECT_EQ(TokenAuth::Parse("abcdefgh u\nabcdefgh v\n", "t").status().message(), "t: line 2: duplicate token");
  EXPECT_FALSE(TokenAuth::Parse("# nothing\n", "t").ok());
  EXPECT_EQ(TokenAuth::Load("/nonexistent/tokens").status().code(), StatusCode::kNotFound);
}

TEST(ConfigTest, ParsesAndNamesBadKeys) {
  auto c = ParseCoordinatorConfig(
      "listen: 127.0.0.1:0\ndatabase: x.db\ntokens_file: t.txt\nheartbeat: {period_ms: 100, failure_threshold: 2}\n"
      "lease: {duration_ms: 500, retry_budget: 1}\nlimits: {max_sweep_experiments: 5}\n",
      "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->heartbeat.period_ms, 100);
  EXPECT_EQ(c->heartbeat.failure_threshold, 2);
  EXPECT_EQ(c->scheduler.lease_ms, 500);
  EXPECT_EQ(c->scheduler.retry_budget, 1);
  EXPECT_EQ(c->max_sweep_experiments, 5);
  EXPECT_EQ(ParseCoordinatorConfig("heartbeat: {period: 1}\n", "c.yaml").status().message(),
            "c.yaml: heartbeat.period: unknown key (did you mean heartbeat.period_ms?; expected one of: failure_threshold, grace_ms, "
            "period_ms, reaper_interval_ms)");
  EXPECT_EQ(ParseCoordinatorConfig("paths: {data_roots: [/a, [b]]}\n", "c.yaml").status().message(),
            "c.yaml: paths.data_roots[1]: expected a string, found a non-scalar");
  EXPECT_EQ(ParseCoordinatorConfig("lease: {retry_budget: 1, retry_budget: 2}\n", "c.yaml").status().message(),
            "c.yaml: lease.retry_budget: appears twice in the same mapping (remove one)");
  EXPECT_EQ(ParseCoordinatorConfig("lease: {duration_ms: -1}\n", "c.yaml").status().message(), "c.yaml: lease.duration_ms: expected >= 1");
  EXPECT_EQ(ParseCoordinatorConfig("tls: {cert: a.pem}\n", "c.yaml").status().message(),
            "c.yaml: tls: set both cert and key, or neither (plaintext)");
  EXPECT_EQ(ParseCoordinatorConfig("heartbeat: {period_ms: x}\n", "c.yaml").status().message(),
            "c.yaml: heartbeat.period_ms: expected an integer, found 'x'");
}

TEST(ConfigTest, TheShippedConfigLoads) {
  auto c = LoadCoordinatorConfig(std::string(CADENZA_SOURCE_DIR) + "/configs/coordinator.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_GT(c->heartbeat.WorstCaseDetectionMs(), c->heartbeat.period_ms);
}

// Every member compared by name, so that a member the field table neither reads nor dumps fails the round trip.
void ExpectSameCoordinatorConfig(const CoordinatorConfig& a, const CoordinatorConfig& b) {
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.database, b.database);
  EXPECT_EQ(a.tokens_file, b.tokens_file);
  EXPECT_EQ(a.tls_cert, b.tls_cert);
  EXPECT_EQ(a.tls_key, b.tls_key);
  EXPECT_EQ(a.http_listen, b.http_listen);
  EXPECT_EQ(a.http_public_metrics, b.http_public_metrics);
  EXPECT_EQ(a.paths.data_roots, b.paths.data_roots);
  EXPECT_EQ(a.paths.output_root, b.paths.output_root);
  EXPECT_EQ(a.heartbeat.period_ms, b.heartbeat.period_ms);
  EXPECT_EQ(a.heartbeat.failure_threshold, b.heartbeat.failure_threshold);
  EXPECT_EQ(a.heartbeat.grace_ms, b.heartbeat.grace_ms);
  EXPECT_EQ(a.heartbeat.reaper_interval_ms, b.heartbeat.reaper_interval_ms);
  EXPECT_EQ(a.scheduler.lease_ms, b.scheduler.lease_ms);
  EXPECT_EQ(a.scheduler.retry_budget, b.scheduler.retry_budget);
  EXPECT_EQ(a.idle_poll_ms, b.idle_poll_ms);
  EXPECT_EQ(a.max_receive_message_bytes, b.max_receive_message_bytes);
  EXPECT_EQ(a.max_send_message_bytes, b.max_send_message_bytes);
  EXPECT_EQ(a.max_sweep_experiments, b.max_sweep_experiments);
  EXPECT_EQ(a.result_cache_rows, b.result_cache_rows);
  const LaunchOptions &x = a.launch, &y = b.launch;
  EXPECT_EQ(x.launcher, y.launcher);
  EXPECT_EQ(x.max_groups, y.max_groups);
  EXPECT_EQ(x.nodes_per_group, y.nodes_per_group);
  EXPECT_EQ(x.ranks_per_group, y.ranks_per_group);
  EXPECT_EQ(x.threads_per_rank, y.threads_per_rank);
  EXPECT_EQ(x.idle_timeout_ms, y.idle_timeout_ms);
  EXPECT_EQ(x.start_timeout_ms, y.start_timeout_ms);
  EXPECT_EQ(x.poll_ms, y.poll_ms);
  EXPECT_EQ(x.user, y.user);
  EXPECT_EQ(x.advertise, y.advertise);
  EXPECT_EQ(x.worker, y.worker);
  EXPECT_EQ(x.worker_args, y.worker_args);
  EXPECT_EQ(x.state_dir, y.state_dir);
  EXPECT_EQ(x.slurm_script, y.slurm_script);
  EXPECT_EQ(x.slurm_job_name, y.slurm_job_name);
  EXPECT_EQ(x.sbatch_args, y.sbatch_args);
  EXPECT_EQ(x.mpirun, y.mpirun);
}

// Every key away from its default (the key-list test below checks that none is left out).
const char kEveryCoordinatorKeySet[] =
    "listen: 0.0.0.0:9000\ndatabase: /srv/coord.db\ntokens_file: /srv/tokens.txt\ntls: {cert: /srv/c.pem, key: /srv/k.pem}\n"
    "http: {listen: \"off\", public_metrics: true}\npaths: {data_roots: [/srv/data, /scratch/corpora], output_root: /srv/runs}\n"
    "heartbeat: {period_ms: 250, failure_threshold: 3, grace_ms: 0, reaper_interval_ms: 100}\n"
    "lease: {duration_ms: 9000, retry_budget: 0, idle_poll_ms: 50}\n"
    "limits: {max_receive_message_bytes: 1048576, max_send_message_bytes: 2097152, max_sweep_experiments: 12, "
    "result_cache_rows: 0}\n"
    "launcher: slurm\n"
    "launch:\n  max_groups: 4\n  nodes_per_group: 2\n  ranks_per_group: 8\n  threads_per_rank: 3\n  idle_timeout_s: 2.5\n"
    "  start_timeout_s: 90.125\n  poll_ms: 100\n  user: alice\n  advertise: head:9000\n  worker: /opt/cadenza-worker\n"
    "  worker_args: [--max-tokens, \"1500\", --wav]\n  state_dir: /shared/launch\n"
    "  slurm: {script: my.sbatch, job_name: cw-alice, sbatch_args: [--partition=cpu, --time=04:00:00]}\n"
    "  local: {mpirun: /usr/bin/mpirun}\n";

// The dump of a config reads back to the same config: the shipped one, and one with every key changed.
TEST(ConfigTest, TheDumpParsesBackToTheSameConfig) {
  auto shipped = LoadCoordinatorConfig(std::string(CADENZA_SOURCE_DIR) + "/configs/coordinator.yaml");
  ASSERT_TRUE(shipped.ok()) << shipped.status().message();
  auto shipped_again = ParseCoordinatorConfig(shipped->ToYaml(), "dumped.yaml");
  ASSERT_TRUE(shipped_again.ok()) << shipped_again.status().message() << "\n" << shipped->ToYaml();
  ExpectSameCoordinatorConfig(*shipped, *shipped_again);
  EXPECT_EQ(shipped_again->ToYaml(), shipped->ToYaml());

  auto c = ParseCoordinatorConfig(kEveryCoordinatorKeySet, "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->launch.worker_args, (std::vector<std::string>{"--max-tokens", "1500", "--wav"}));
  EXPECT_EQ(c->launch.sbatch_args, (std::vector<std::string>{"--partition=cpu", "--time=04:00:00"}));
  EXPECT_EQ(c->launch.idle_timeout_ms, 2500);
  EXPECT_EQ(c->launch.start_timeout_ms, 90125);
  const std::string yaml = c->ToYaml();
  EXPECT_NE(yaml.find("idle_timeout_s: 2.5\n"), std::string::npos) << "seconds are dumped as seconds:\n" << yaml;
  EXPECT_NE(yaml.find("start_timeout_s: 90.125\n"), std::string::npos) << yaml;
  auto again = ParseCoordinatorConfig(yaml, "dumped.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << yaml;
  ExpectSameCoordinatorConfig(*c, *again);
  EXPECT_EQ(again->ToYaml(), yaml);
  // A duration finer than the stored millisecond is rounded to the nearest one.
  auto fine = ParseCoordinatorConfig("launch: {idle_timeout_s: 0.0016}\n", "c.yaml");
  ASSERT_TRUE(fine.ok()) << fine.status().message();
  EXPECT_EQ(fine->launch.idle_timeout_ms, 2);
}

// `cadenza config keys coordinator`: every key once, with the default the dump has, and each one in the shipped file.
TEST(ConfigTest, EveryKeyIsListedOnceWithItsDefault) {
  std::map<std::string, ConfigKeyDoc> listed;
  for (const ConfigKeyDoc& k : CoordinatorConfigKeys()) {
    EXPECT_TRUE(listed.emplace(k.key, k).second) << k.key << " listed twice";
    EXPECT_FALSE(k.type.empty()) << k.key;
    EXPECT_FALSE(k.doc.empty()) << k.key;
  }
  auto every = ParseCoordinatorConfig(kEveryCoordinatorKeySet, "c.yaml");
  ASSERT_TRUE(every.ok()) << every.status().message();
  std::map<std::string, std::string> defaults, changed, shipped;
  cadenza::testing::FlattenYamlKeys(YAML::Load(CoordinatorConfig().ToYaml()), "", &defaults);
  cadenza::testing::FlattenYamlKeys(YAML::Load(every->ToYaml()), "", &changed);
  cadenza::testing::FlattenYamlKeys(YAML::LoadFile(std::string(CADENZA_SOURCE_DIR) + "/configs/coordinator.yaml"), "", &shipped);
  for (const auto& [key, k] : listed) {
    ASSERT_TRUE(defaults.count(key)) << key << " is listed but not dumped";
    EXPECT_EQ(k.default_value, defaults[key]) << key;
    EXPECT_NE(changed[key], defaults[key]) << key << " is not set by kEveryCoordinatorKeySet (the round trip misses it)";
    EXPECT_TRUE(shipped.count(key)) << key << " is not in configs/coordinator.yaml";
  }
  EXPECT_EQ(defaults.size(), listed.size()) << "a dumped key is not listed";
  EXPECT_EQ(shipped.size(), listed.size()) << "configs/coordinator.yaml has a key that is not listed";
  EXPECT_EQ(listed["launch.idle_timeout_s"].type, "seconds");
  EXPECT_EQ(listed["launch.idle_timeout_s"].default_value, "300");
  EXPECT_EQ(listed["launch.idle_timeout_s"].allowed, ">= 0");
  EXPECT_EQ(listed["launch.start_timeout_s"].default_value, "600");
  EXPECT_EQ(listed["launch.slurm.sbatch_args"].default_value, "[]");
  EXPECT_EQ(listed["launch.worker_args"].type, "list of strings");
  EXPECT_EQ(listed["launcher"].allowed, "none | local | slurm");
  EXPECT_EQ(listed["lease.retry_budget"].allowed, "0..100");
  EXPECT_EQ(listed["limits.max_send_message_bytes"].default_value, "16777216");
  const std::string printed = FormatConfigKeys(CoordinatorConfigKeys());
  EXPECT_NE(printed.find("launch.slurm.job_name"), std::string::npos) << printed;
  EXPECT_NE(printed.find("default cadenza-worker"), std::string::npos) << printed;
}

TEST(ConfigTest, ATypoNamesTheNearestKeyAndABadValueItsKey) {
  auto expect_error = [](const std::string& yaml, const std::string& error) {
    auto c = ParseCoordinatorConfig(yaml, "c.yaml");
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_EQ(c.status().message().substr(0, error.size()), error) << yaml;
  };
  expect_error("lisen: 127.0.0.1:1\n", "c.yaml: lisen: unknown key (did you mean listen?; expected one of: ");
  expect_error("launch: {idle_timeout: 5}\n", "c.yaml: launch.idle_timeout: unknown key (did you mean launch.idle_timeout_s?; ");
  expect_error("launch: {slurm: {sbatch_arg: [--qos=normal]}}\n",
               "c.yaml: launch.slurm.sbatch_arg: unknown key (did you mean launch.slurm.sbatch_args?; expected one of: job_name, "
               "sbatch_args, script)");
  expect_error("launch: {local: {mpiexec: mpiexec}}\n", "c.yaml: launch.local.mpiexec: unknown key (expected one of: mpirun)");
  expect_error("launch: [max_groups]\n", "c.yaml: launch: expected a mapping");
  // Ranges, from the table.
  expect_error("limits: {max_send_message_bytes: 100}\n", "c.yaml: limits.max_send_message_bytes: expected >= 1024");
  expect_error("lease: {retry_budget: 101}\n", "c.yaml: lease.retry_budget: expected 0..100");
  expect_error("launch: {poll_ms: 5}\n", "c.yaml: launch.poll_ms: expected >= 10");
  expect_error("launch: {start_timeout_s: 0.5}\n", "c.yaml: launch.start_timeout_s: expected >= 1");
  expect_error("launch: {idle_timeout_s: -1}\n", "c.yaml: launch.idle_timeout_s: expected >= 0");
  expect_error("launch: {idle_timeout_s: 1e300}\n", "c.yaml: launch.idle_timeout_s: expected >= 0 and at most 1e+15 seconds, found 1e+300");
  expect_error("launch: {idle_timeout_s: soon}\n", "c.yaml: launch.idle_timeout_s: expected a number, found 'soon'");
  // Formats and rules between keys, after the table's checks.
  expect_error("launch: {ranks_per_group: 1, nodes_per_group: 2}\n", "c.yaml: launch.ranks_per_group: expected >= nodes_per_group");
  expect_error("launch: {slurm: {job_name: \"\"}}\n", "c.yaml: launch.slurm.job_name: expected a name (squeue finds the groups by it)");
  expect_error("listen: localhost\n", "c.yaml: listen: expected host:port");
  expect_error("http: {listen: everywhere}\n", "c.yaml: http.listen: expected auto, off or host:port, found 'everywhere'");
  expect_error("database: \"\"\n", "c.yaml: database: required: the SQLite file of the coordinator's state");
  expect_error("tokens_file: \"\"\n", "c.yaml: tokens_file: required: every RPC needs a bearer token");
  expect_error("paths: {data_roots: [/srv/data, data]}\n", "c.yaml: paths.data_roots[1]: expected an absolute folder, found 'data'");
}

}  // namespace
}  // namespace cadenza::coord
