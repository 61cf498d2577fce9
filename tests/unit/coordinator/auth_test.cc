// TokenAuth and the coordinator config: tokens file parsing, bearer checks, config keys and ranges.
#include "coordinator/auth.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "coordinator/config.h"

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

}  // namespace
}  // namespace cadenza::coord
