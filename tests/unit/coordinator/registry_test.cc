// WorkerRegistry: registration, heartbeats, dead-rank detection within the documented worst case.
#include "coordinator/registry.h"

#include <gtest/gtest.h>

#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

HeartbeatOptions Options() {
  HeartbeatOptions o;
  o.period_ms = 100;
  o.failure_threshold = 3;
  o.grace_ms = 50;
  o.reaper_interval_ms = 20;
  return o;
}

WorkerGroup Group(int ranks) {
  WorkerGroup g;
  g.host = "node1";
  g.ranks = ranks;
  g.device = "cpu";
  return g;
}

TEST(RegistryTest, DocumentedDetectionTime) {
  const HeartbeatOptions o = Options();
  EXPECT_EQ(o.TimeoutMs(), 100 * 3 + 50);
  EXPECT_EQ(o.WorstCaseDetectionMs(), 100 * 3 + 50 + 20);
}

TEST(RegistryTest, DetectsTheSilentRankOnly) {
  WorkerRegistry r(nullptr, Options());
  auto id = r.Register(Group(2), 0, 0);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(r.LiveRanks(), 2);
  ASSERT_TRUE(r.Heartbeat({*id, 0}, 300).ok());
  EXPECT_TRUE(r.CollectDead(350).empty());  // exactly the timeout: still alive
  auto dead = r.CollectDead(351);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], (WorkerKey{*id, 1}));
  EXPECT_TRUE(r.CollectDead(352).empty());  // reported once
  EXPECT_EQ(r.LiveRanks(), 1);
  ASSERT_TRUE(r.Heartbeat({*id, 1}, 400).ok());  // a late heartbeat revives the rank
  EXPECT_EQ(r.LiveRanks(), 2);
}

TEST(RegistryTest, RejectsUnknownGroupsAndRanks) {
  WorkerRegistry r(nullptr, Options());
  auto id = r.Register(Group(2), 0, 0);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(r.Heartbeat({*id + 5, 0}, 1).code(), StatusCode::kNotFound);
  Status bad = r.Heartbeat({*id, 2}, 1);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("worker.rank"), std::string::npos) << bad.message();
  EXPECT_EQ(r.Register(Group(0), 0, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Register(Group(3), *id, 0).status().code(), StatusCode::kInvalidArgument);  // ranks differ
  EXPECT_TRUE(r.Register(Group(2), *id, 0).ok());  // re-register a known group
}

TEST(RegistryTest, GroupsSurviveARestart) {
  testing::TempDir dir;
  auto store = Store::Open(dir.File("c.db"));
  ASSERT_TRUE(store.ok());
  int64_t id = 0;
  {
    WorkerRegistry r(store->get(), Options());
    id = *r.Register(Group(4), 0, 0);
  }
  WorkerRegistry r(store->get(), Options());
  ASSERT_TRUE(r.Recover(1000).ok());
  EXPECT_EQ(r.LiveRanks(), 4);
  EXPECT_TRUE(r.Heartbeat({id, 3}, 1001).ok());
  EXPECT_TRUE(r.CollectDead(1000 + 350).empty());
}

}  // namespace
}  // namespace cadenza::coord
