// Aggregation of results per sweep cell: Student t intervals against hand values, per-job merging, cell grouping.
#include <gtest/gtest.h>

#include <cmath>

#include "coordinator/convert.h"

namespace cadenza::coord {
namespace {

TEST(AggregateTest, StudentTQuantiles) {
  EXPECT_NEAR(StudentT95(1), 12.706, 1e-3);
  EXPECT_NEAR(StudentT95(2), 4.303, 1e-3);
  EXPECT_NEAR(StudentT95(30), 2.042, 1e-3);
  EXPECT_NEAR(StudentT95(60), 2.000, 2e-3);
  EXPECT_NEAR(StudentT95(120), 1.980, 2e-3);
  EXPECT_NEAR(StudentT95(100000), 1.960, 1e-3);
  EXPECT_EQ(StudentT95(0), 0.0);
}

TEST(AggregateTest, SummaryAgainstHandValues) {
  // 1, 2, 3: mean 2, sd 1, CI half-width t(2) * 1 / sqrt(3) = 4.303 / 1.732 = 2.484.
  MetricStats m = SummarizeRuns({1, 2, 3});
  EXPECT_EQ(m.n, 3);
  EXPECT_DOUBLE_EQ(m.mean, 2);
  EXPECT_DOUBLE_EQ(m.stddev, 1);
  EXPECT_NEAR(m.ci95, 2.4843, 1e-4);
  EXPECT_EQ(m.min, 1);
  EXPECT_EQ(m.max, 3);
  // 0.7, 0.9: mean 0.8, sd 0.1414, t(1) = 12.706 -> 12.706 * 0.1414 / 1.414 = 1.2706.
  m = SummarizeRuns({0.7, 0.9});
  EXPECT_NEAR(m.ci95, 1.2706, 1e-4);
  m = SummarizeRuns({5});
  EXPECT_EQ(m.ci95, 0);
  EXPECT_EQ(m.stddev, 0);
}

ResultView Row(int64_t job, TaskKind kind, std::map<std::string, double> metrics, std::map<std::string, std::string> axes,
               JobState state = JobState::kSucceeded) {
  ResultView v;
  v.job.id = job;
  v.job.state = state;
  v.job.experiment.model_family = axes.count("model") && axes["model"] == "lstm" ? "lstm" : "transformer";
  v.job.experiment.parameters = 1000;
  v.job.experiment.dataset = "/data/" + axes["dataset"];
  v.job.experiment.axes = axes;
  v.result.job_id = job;
  v.result.kind = kind;
  v.result.metrics = std::move(metrics);
  return v;
}

TEST(AggregateTest, CellsMergeEachRunThenAggregateOverSeeds) {
  auto axes = [](const std::string& model, const std::string& fraction, int seed) {
    return std::map<std::string, std::string>{{"dataset", "pop"}, {"model", model}, {"dataset_fraction", fraction},
                                              {"context_length", "256"}, {"seed", std::to_string(seed)}};
  };
  std::vector<ResultView> rows;
  int64_t job = 1;
  for (const std::string model : {"tf", "lstm"}) {
    for (const std::string fraction : {"0.1", "1"}) {
      for (int seed = 1; seed <= 3; ++seed, ++job) {
        rows.push_back(Row(job, TaskKind::kTrain, {{"val_nll", 9}, {"data/train_tokens", fraction == "1" ? 1000 : 100}}, axes(model, fraction, seed)));
        rows.push_back(Row(job, TaskKind::kGenerate, {{"ms_per_token", 5}}, axes(model, fraction, seed)));
        rows.push_back(Row(job, TaskKind::kScore, {{"test/nll_per_token", double(seed)}}, axes(model, fraction, seed)));
        rows.push_back(Row(job, TaskKind::kAggregate, {{"pitch_range/mean", 10.0 + seed}}, axes(model, fraction, seed)));
      }
    }
  }
  // A failed run's partial results stay out of the cell.
  rows.push_back(Row(99, TaskKind::kScore, {{"test/nll_per_token", 100}}, axes("tf", "0.1", 4), JobState::kFailed));
  const auto merged = MergePerJob(rows);
  ASSERT_EQ(merged.size(), 12u);
  EXPECT_EQ(merged[0].result.metrics.count("train/val_nll"), 1u);  // train's own names are prefixed
  EXPECT_EQ(merged[0].result.metrics.count("ms_per_token"), 0u);   // shard rows are left out
  EXPECT_EQ(merged[0].result.metrics.at("test/nll_per_token"), 1);
  auto agg = Aggregate(rows, {"cell"}, {}, /*per_job=*/true);
  ASSERT_TRUE(agg.ok()) << agg.status().message();
  ASSERT_EQ(agg->rows_size(), 4);
  const auto& first = agg->rows(0);
  EXPECT_EQ(first.group().at("model"), "tf");
  EXPECT_EQ(first.group().at("dataset_fraction"), "0.1");
  EXPECT_EQ(first.group().at("context_length"), "256");
  EXPECT_EQ(first.group().at("model_family"), "transformer");
  EXPECT_EQ(first.group().at("parameters"), "1000");
  EXPECT_EQ(first.group().count("seed"), 0u);
  EXPECT_EQ(first.count(), 3);
  bool seen = false;
  for (const auto& m : first.metrics()) {
    if (m.name() != "test/nll_per_token") continue;
    seen = true;
    EXPECT_EQ(m.n(), 3);
    EXPECT_DOUBLE_EQ(m.mean(), 2);
    EXPECT_NEAR(m.ci95(), 2.4843, 1e-4);
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(agg->rows(1).group().at("dataset_fraction"), "1");  // expansion order, not string order
  EXPECT_EQ(agg->rows(2).group().at("model"), "lstm");
  EXPECT_TRUE(Aggregate(rows, {"dataset_fraction"}, {}, true).ok());  // one axis alone
  auto bad = Aggregate(rows, {"colour"}, {}, true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("group_by[0]: expected dataset, model_family"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("dataset_fraction"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace cadenza::coord
