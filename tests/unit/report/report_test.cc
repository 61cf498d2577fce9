// core/report: cells -> figure data, gnuplot scripts, the CSV and the page, as `cadenza report` writes them.
#include "core/report/page.h"
#include "core/report/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace cadenza {
namespace {

// Cells in the shape `cadenza results --sweep N --format json` prints: two models x two fractions, probes on one
// cell of each model, the Transformer beyond its context at 4096 (absent, never 0).
std::string StudyJson() {
  nlohmann::json cells = nlohmann::json::array();
  auto stat = [](nlohmann::json& o, const std::string& m, double mean, double ci, int n) {
    o[m + "_mean"] = mean;
    o[m + "_sd"] = ci / 2;
    o[m + "_ci95"] = ci;
    o[m + "_n"] = n;
  };
  for (const std::string model : {"transformer", "lstm"}) {
    for (double f : {1.0, 0.25}) {  // out of order: figures sort by x
      nlohmann::json c = {{"model", model}, {"model_family", model}, {"parameters", model == "lstm" ? 3465472 : 3320320},
                          {"dataset", "/data/out/nottingham/"}, {"dataset_fraction", f}, {"n", 3}, {"train_tokens", 1000}};
      stat(c, "test/nll_per_token", (model == "lstm" ? 2.0 : 1.0) + (f < 1 ? 0.1 : 0.0), 0.05, 3);
      stat(c, "structureness/mean", 0.3, 0.1, 3);
      if (f == 1.0) {
        stat(c, "probe/L64/b1/forward_ms", model == "lstm" ? 17.0 : 5.0, 0.5, 3);
        stat(c, "probe/L1024/b1/forward_ms", model == "lstm" ? 270.0 : 90.0, 4.0, 3);
        if (model == "lstm") stat(c, "probe/L4096/b1/forward_ms", 1100.0, 9.0, 3);
      }
      c["val/nll_per_token_mean"] = "";  // a metric this cell lacks prints as an empty string
      cells.push_back(c);
    }
  }
  return cells.dump();
}

const Figure* Find(const std::vector<Figure>& figures, const std::string& id) {
  for (const Figure& f : figures) if (f.id == id) return &f;
  return nullptr;
}

TEST(ReportTest, CellsParseWithAxesRunsAndStatistics) {
  auto cells = ParseCells(StudyJson(), "cells.json");
  ASSERT_TRUE(cells.ok()) << cells.status().message();
  ASSERT_EQ(cells->size(), 4u);
  const ReportCell& c = (*cells)[1];
  EXPECT_EQ(c.Model(), "transformer");
  EXPECT_EQ(c.axes.at("dataset_fraction"), "0.25");
  EXPECT_EQ(c.axes.at("parameters"), "3320320");
  EXPECT_EQ(c.runs, 3);
  ASSERT_NE(c.Metric("test/nll_per_token"), nullptr);
  EXPECT_DOUBLE_EQ(c.Metric("test/nll_per_token")->mean, 1.1);
  EXPECT_DOUBLE_EQ(c.Metric("test/nll_per_token")->ci95, 0.05);
  EXPECT_EQ(c.Metric("test/nll_per_token")->n, 3);
  EXPECT_EQ(c.Metric("val/nll_per_token"), nullptr) << "an empty value is an absent metric, not 0";
  EXPECT_FALSE(c.axes.count("train_tokens"));
}

TEST(ReportTest, BadInputIsNamed) {
  auto not_json = ParseCells("[{", "r.json");
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.status().message().find("r.json: not JSON"), std::string::npos);
  auto not_list = ParseCells("{\"a\": 1}", "r.json");
  ASSERT_FALSE(not_list.ok());
  EXPECT_NE(not_list.status().message().find("cadenza results --sweep N --format json"), std::string::npos);
  auto bad = ParseCells("[{\"model\": \"x\", \"test/nll_per_token_mean\": true}]", "r.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cell 0: test/nll_per_token_mean: expected a number"), std::string::npos)
      << bad.status().message();
}

TEST(ReportTest, QualityFigureHasOneSeriesPerModelSortedWithCiBands) {
  auto cells = ParseCells(StudyJson(), "cells.json");
  ASSERT_TRUE(cells.ok());
  const auto figures = StudyFigures(*cells);
  const Figure* q = Find(figures, "quality-test-nll-nottingham");
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(q->series.size(), 2u);
  EXPECT_EQ(q->series[0].label, "transformer");
  EXPECT_EQ(q->series[1].label, "lstm");
  EXPECT_EQ(q->series[0].x, (std::vector<double>{0.25, 1.0}));
  EXPECT_DOUBLE_EQ(q->series[0].y[0], 1.1);
  EXPECT_DOUBLE_EQ(q->series[0].lo[0], 1.05);
  EXPECT_DOUBLE_EQ(q->series[0].hi[0], 1.15);
  EXPECT_DOUBLE_EQ(q->series[1].y[1], 2.0);
  EXPECT_EQ(Find(figures, "quality-val-nll-nottingham"), nullptr) << "no cell has val NLL: no empty figure";
  EXPECT_NE(Find(figures, "samples-structureness-mean-nottingham"), nullptr);
}

TEST(ReportTest, LatencyFigureLeavesLengthsBeyondTheContextOutAndNamesThem) {
  auto cells = ParseCells(StudyJson(), "cells.json");
  ASSERT_TRUE(cells.ok());
  const auto figures = StudyFigures(*cells);
  const Figure* l = Find(figures, "latency-forward-nottingham");
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(l->logx);
  ASSERT_EQ(l->series.size(), 2u);
  EXPECT_EQ(l->series[0].x, (std::vector<double>{64, 1024})) << "the transformer has no point at 4096";
  EXPECT_EQ(l->series[1].x, (std::vector<double>{64, 1024, 4096}));
  EXPECT_DOUBLE_EQ(l->series[1].y[2], 1100.0);
  ASSERT_EQ(l->missing.size(), 1u);
  EXPECT_NE(l->missing[0].find("transformer: no forward_ms at length 4096"), std::string::npos) << l->missing[0];
}

TEST(ReportTest, GnuplotScriptHoldsTheDataAndBothOutputs) {
  auto cells = ParseCells(StudyJson(), "cells.json");
  ASSERT_TRUE(cells.ok());
  const auto figures = StudyFigures(*cells);
  const Figure* q = Find(figures, "quality-test-nll-nottingham");
  ASSERT_NE(q, nullptr);
  const std::string g = GnuplotScript(*q, "q.svg", "q.png");
  for (const char* want : {"set terminal svg", "set output \"q.svg\"", "set terminal pngcairo", "set output \"q.png\"",
                           "replot", "$s0 << EOD\n0.25 1.1 1.05 1.15\n1 1 0.95 1.05\nEOD", "filledcurves",
                           "title \"lstm\""}) {
    EXPECT_NE(g.find(want), std::string::npos) << want << " missing from\n" << g;
  }
}

TEST(ReportTest, CsvAndPageCarryEveryCell) {
  auto cells = ParseCells(StudyJson(), "cells.json");
  ASSERT_TRUE(cells.ok());
  const std::string csv = CellsCsv(*cells);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5) << csv;
  EXPECT_EQ(csv.rfind("model,model_family,parameters,dataset,dataset_fraction,n,", 0), 0u) << csv.substr(0, 200);
  EXPECT_NE(csv.find("test/nll_per_token_ci95"), std::string::npos);
  const auto figures = StudyFigures(*cells);
  ReportContext ctx;
  ctx.title = "sweep <3>";
  ctx.facts = {{"cadenza commit", "abc"}};
  const nlohmann::json rows = nlohmann::json::parse(StudyJson());
  const std::string html = PageHtml(ReportData(rows, figures, ctx, /*files=*/true));
  // The data the page draws is embedded whole, and "</" cannot end its script element early.
  const std::string open = "<script id=\"cadenza-data\" type=\"application/json\">";
  const size_t at = html.find(open);
  ASSERT_NE(at, std::string::npos);
  const size_t from = at + open.size();
  const std::string embedded = html.substr(from, html.find("</script>", from) - from);
  const nlohmann::json data = nlohmann::json::parse(embedded);
  EXPECT_EQ(data["title"], "sweep <3>");
  EXPECT_EQ(data["cells"], rows) << "the cells exactly as `cadenza results --format json` gave them";
  ASSERT_EQ(data["figures"].size(), figures.size());
  EXPECT_EQ(data["figures"][0]["series"][0]["y"].size(), figures[0].series[0].y.size());
  EXPECT_NE(html.find("uPlot"), std::string::npos) << "the chart library is inline: the page needs no other file";
  EXPECT_NE(html.find("data-live=\"0\""), std::string::npos);
  for (const char* remote : {"src=\"http", "href=\"http", "src='http", "url(http", "fetch(\"http"}) {
    EXPECT_EQ(html.find(remote), std::string::npos) << "no network reference: " << remote;
  }
  // The live page is the same page without data.
  const std::string live = PageHtml(nullptr);
  EXPECT_NE(live.find("data-live=\"1\""), std::string::npos);
  EXPECT_NE(live.find("/api/v1/sweeps/"), std::string::npos);
}

// A title with "</script>" cannot break out of the embedded data.
TEST(ReportTest, EmbeddedDataCannotCloseItsScript) {
  ReportContext ctx;
  ctx.title = "</script><script>alert(1)</script>";
  const std::string html = PageHtml(ReportData(nlohmann::json::array(), {}, ctx, false));
  EXPECT_EQ(html.find("</script><script>alert(1)"), std::string::npos);
  const std::string open = "<script id=\"cadenza-data\" type=\"application/json\">";
  const size_t from = html.find(open) + open.size();
  EXPECT_EQ(nlohmann::json::parse(html.substr(from, html.find("</script>", from) - from))["title"], ctx.title);
}

// A learning-rate search: cells of one model differ in train.lr, which then names the series.
TEST(ReportTest, AnAxisThatVariesBesidesTheFractionSplitsTheSeries) {
  const std::string json = R"([
    {"model": "lstm", "dataset": "ds", "dataset_fraction": 1, "context_length": 256, "train.lr": 0.004, "n": 1,
     "test/nll_per_token_mean": 1.2, "test/nll_per_token_sd": 0, "test/nll_per_token_ci95": 0, "test/nll_per_token_n": 1},
    {"model": "lstm", "dataset": "ds", "dataset_fraction": 1, "context_length": 256, "train.lr": 0.008, "n": 1,
     "test/nll_per_token_mean": 0.9, "test/nll_per_token_sd": 0, "test/nll_per_token_ci95": 0, "test/nll_per_token_n": 1}])";
  auto cells = ParseCells(json, "lr.json");
  ASSERT_TRUE(cells.ok()) << cells.status().message();
  const Figure* q = nullptr;
  const auto figures = StudyFigures(*cells);
  q = Find(figures, "quality-test-nll-ds");
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(q->series.size(), 2u);
  EXPECT_EQ(q->series[0].label, "lstm train.lr=0.004") << "context_length does not vary: not in the label";
  EXPECT_EQ(q->series[1].label, "lstm train.lr=0.008");
}

TEST(ReportTest, TrainingCurvesAverageTheLargestFractionsRunsPerStep) {
  auto run = [](const std::string& model, double fraction, const std::string& csv) {
    RunCurves r;
    r.model = model;
    r.dataset = "out/ds";
    r.fraction = fraction;
    Status s = ParseMetricsCsv(csv, model + ".csv", &r);
    EXPECT_TRUE(s.ok()) << s.message();
    return r;
  };
  std::vector<RunCurves> runs = {
      run("tf", 1.0, "step,tag,value\n50,val/nll_per_token,2\n50,sample/structureness,0.1\n100,val/nll_per_token,1.5\n"),
      run("tf", 1.0, "step,tag,value\n50,val/nll_per_token,4\n100,val/nll_per_token,1.5\n100,val/nll_per_token,1.7\n"),
      run("tf", 0.5, "step,tag,value\n50,val/nll_per_token,9\n"),  // a smaller fraction: not in the curve
      run("lstm", 1.0, "step,tag,value\n50,val/nll_per_token,3\n")};
  const auto figures = CurveFigures(runs);
  const Figure* v = Find(figures, "curve-val-nll-per-token-ds");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->series.size(), 2u);
  EXPECT_EQ(v->series[0].label, "tf (fraction 1, 2 runs)");
  EXPECT_EQ(v->series[0].x, (std::vector<double>{50, 100}));
  EXPECT_DOUBLE_EQ(v->series[0].y[0], 3.0);
  EXPECT_DOUBLE_EQ(v->series[0].y[1], 1.6) << "a repeated step keeps its last value";
  EXPECT_NEAR(v->series[0].hi[0] - 3.0, 12.706 * std::sqrt(2.0) / std::sqrt(2.0), 1e-3) << "t(1) * sd / sqrt(n)";
  const Figure* st = Find(figures, "curve-sample-structureness-ds");
  ASSERT_NE(st, nullptr);
  ASSERT_EQ(st->series.size(), 1u);
  ASSERT_EQ(st->missing.size(), 1u);
  EXPECT_NE(st->missing[0].find("lstm: no sample/structureness"), std::string::npos);
  RunCurves bad;
  Status s = ParseMetricsCsv("step,tag,value\n5,val/x\n", "m.csv", &bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("m.csv: line 2"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cadenza

namespace cadenza {
namespace {

// Each family's own learning rate (models.<name>.set) varies between models only: it names no extra series.
TEST(ReportTest, AnAxisSetPerModelDoesNotSplitItsSeries) {
  const std::string json = R"([
    {"model": "lstm", "dataset": "ds", "dataset_fraction": 0.5, "train.lr": 0.01, "n": 1,
     "test/nll_per_token_mean": 1.2, "test/nll_per_token_sd": 0, "test/nll_per_token_ci95": 0, "test/nll_per_token_n": 1},
    {"model": "lstm", "dataset": "ds", "dataset_fraction": 1, "train.lr": 0.01, "n": 1,
     "test/nll_per_token_mean": 1.1, "test/nll_per_token_sd": 0, "test/nll_per_token_ci95": 0, "test/nll_per_token_n": 1},
    {"model": "transformer", "dataset": "ds", "dataset_fraction": 1, "train.lr": 0.002, "n": 1,
     "test/nll_per_token_mean": 1.3, "test/nll_per_token_sd": 0, "test/nll_per_token_ci95": 0, "test/nll_per_token_n": 1}])";
  auto cells = ParseCells(json, "study.json");
  ASSERT_TRUE(cells.ok()) << cells.status().message();
  const auto figures = StudyFigures(*cells);
  ASSERT_FALSE(figures.empty());
  ASSERT_EQ(figures[0].series.size(), 2u);
  EXPECT_EQ(figures[0].series[0].label, "lstm");
  EXPECT_EQ(figures[0].series[0].x.size(), 2u);
  EXPECT_EQ(figures[0].series[1].label, "transformer");
}

TEST(ReportTest, AxesSummaryListsEachAxisValuesInOrder) {
  EXPECT_EQ(AxesSummary({{{"model", "lstm"}, {"dataset_fraction", "1.0"}, {"seed", "10"}},
                         {{"model", "transformer"}, {"dataset_fraction", "0.25"}, {"seed", "2"}},
                         {{"model", "lstm"}, {"dataset_fraction", "0.5"}, {"seed", "2"}}}),
            "dataset_fraction: 0.25, 0.5, 1.0; model: lstm, transformer; seed: 2, 10");
  EXPECT_EQ(AxesSummary({}), "");
}

}  // namespace
}  // namespace cadenza
