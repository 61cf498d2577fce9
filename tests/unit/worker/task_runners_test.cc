// The score and probe task runners and the generate settings, on a tiny model trained on an ingested corpus:
// the metric names and values a user sees in `cadenza results`, the reports on disk, and the errors.
#include "worker/task_runners.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/experiment_config.h"
#include "core/model/model_api.h"
#include "core/model/trainer.h"
#include "core/vocabulary.h"
#include "storage/ingest.h"
#include "storage/training_windows.h"
#include "tests/unit/storage/storage_test_util.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

// Two corpora of synthetic tunes (the second as a "cross-corpus" set) and a Transformer trained for a few steps.
class TaskRunnersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const int meters[][2] = {{4, 4}, {3, 4}, {6, 8}};
    for (const char* corpus : {"main", "other"}) {
      const int offset = std::string(corpus) == "main" ? 0 : 500;
      for (int i = 0; i < 30; ++i) {
        Score s = testing::MakeTune(offset + i, 8 + i % 7, meters[i % 3][0], meters[i % 3][1]);
        ASSERT_EQ(testing::WriteTune(s, *dir_ / (std::string(corpus) + "/tune" + std::to_string(i) + ".mid")), "");
      }
      IngestOptions o;
      o.input_dir = *dir_ / corpus;
      o.out_dir = *dir_ / (std::string(corpus) + "-ds");
      o.shards = 2;
      o.val_fraction = 0.2;
      o.test_fraction = 0.2;
      o.jobs = 2;
      o.progress = false;
      IngestReport report;
      Status st = Ingest(o, &report);
      ASSERT_TRUE(st.ok()) << st.message();
    }
    config_ = new ExperimentConfig();
    ExperimentConfig& c = *config_;
    c.name = "tiny";
    c.dataset = *dir_ / "main-ds";
    c.out = *dir_ / "run";
    c.model.family = "transformer";
    c.model.vocab_size = Vocabulary::Get().size();
    c.model.d_model = 32;
    c.model.layers = 1;
    c.model.heads = 2;
    c.model.ff_dim = 64;
    c.model.max_len = 64;
    c.model.dropout = 0.1;
    c.train.seq_len = 48;
    c.train.batch_size = 4;
    c.train.steps = 6;
    c.train.warmup_steps = 1;
    c.train.eval_every = 6;
    c.train.eval_windows = 0;  // all: the last validation is the score of the val split
    c.train.threads = 2;
    auto windows = OpenExperimentWindows(c);
    ASSERT_TRUE(windows.ok()) << windows.status().message();
    TrainOptions to;
    to.progress = false;
    auto summary = Train(c, *windows->train, *windows->val, to);
    ASSERT_TRUE(summary.ok()) << summary.status().message();
    last_val_nll_ = summary->last_val_nll;
    checkpoint_ = new std::string(summary->checkpoint);
  }
  static void TearDownTestSuite() {
    delete config_;
    delete checkpoint_;
    delete dir_;
  }

  static testing::TempDir* dir_;
  static ExperimentConfig* config_;
  static std::string* checkpoint_;
  static double last_val_nll_;
};
testing::TempDir* TaskRunnersTest::dir_ = nullptr;
ExperimentConfig* TaskRunnersTest::config_ = nullptr;
std::string* TaskRunnersTest::checkpoint_ = nullptr;
double TaskRunnersTest::last_val_nll_ = 0;

TEST_F(TaskRunnersTest, ScoreReportsEverySplitAndOtherCorporaByName) {
  ExperimentConfig c = *config_;
  c.score.on = {(*dir_ / "other-ds") + "/"};
  const std::string report = *dir_ / "out/score.json";
  auto r = RunScoreTask(*checkpoint_, c, report);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& m = r->metrics;
  for (const std::string prefix : {"val", "test", "on/other-ds"}) {
    for (const char* field : {"nll_per_token", "nll_per_bar", "perplexity", "tokens", "bars", "pieces", "windows"}) {
      EXPECT_TRUE(m.count(prefix + "/" + field)) << prefix << "/" << field << " missing";
    }
    EXPECT_GT(m.at(prefix + "/tokens"), 0);
    EXPECT_GT(m.at(prefix + "/nll_per_bar"), m.at(prefix + "/nll_per_token")) << "a bar holds many tokens";
    EXPECT_NEAR(m.at(prefix + "/perplexity"), std::exp(m.at(prefix + "/nll_per_token")), 1e-6 * m.at(prefix + "/perplexity"));
  }
  EXPECT_FALSE(m.count("train/nll_per_token")) << "only score.splits are scored";
  // With a window at every bar line, no dropout: what the trainer's final full validation computed
  // (eval_windows 0). The default tiling scores each token about once: fewer windows, a mean close to it.
  ExperimentConfig every = c;
  every.score.windows = "every_bar";
  auto all = RunScoreTask(*checkpoint_, every, "");
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_NEAR(all->metrics.at("val/nll_per_token"), last_val_nll_, 1e-4);
  // (Here a bar is about as long as the 48-token window, so the two nearly coincide; DatasetTest covers the saving.)
  EXPECT_LE(m.at("val/windows"), all->metrics.at("val/windows"));
  EXPECT_LE(m.at("val/tokens"), all->metrics.at("val/tokens"));
  EXPECT_NEAR(m.at("val/nll_per_token"), all->metrics.at("val/nll_per_token"), 0.15 * all->metrics.at("val/nll_per_token"));
  // The JSON report holds the same numbers.
  std::ifstream in(report);
  ASSERT_TRUE(in) << report;
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["results"][0]["name"], "val");
  EXPECT_EQ(j["results"][2]["name"], "on/other-ds");
  EXPECT_EQ(j["results"][2]["split"], "test");
  EXPECT_DOUBLE_EQ(j["results"][1]["nll_per_token"].get<double>(), m.at("test/nll_per_token"));
  EXPECT_EQ(j["seq_len"], 48);
  EXPECT_EQ(j["windows"], "tiled");
  EXPECT_EQ(r->artifacts, std::vector<std::string>{report});
  // Deterministic: the same checkpoint and windows give the same sums.
  auto again = RunScoreTask(*checkpoint_, c, "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->metrics.at("test/nll_per_token"), m.at("test/nll_per_token"));
}

TEST_F(TaskRunnersTest, ScoreErrorsNameWhatIsMissing) {
  ExperimentConfig c = *config_;
  c.score.on = {*dir_ / "no-such-ds"};
  auto r = RunScoreTask(*checkpoint_, c, *dir_ / "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no-such-ds"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(*dir_ / "x.json")) << "no half report";
  auto missing = RunScoreTask(*dir_ / "none.pt", *config_, *dir_ / "y.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("none.pt"), std::string::npos) << missing.status().message();
}

TEST_F(TaskRunnersTest, ProbeMetricsPerLengthAndBatchLeaveOutLengthsBeyondTheContext) {
  ExperimentConfig c = *config_;
  c.probe.lengths = {16, 32, 128};  // max_len is 64
  c.probe.batch_sizes = {1, 2};
  c.probe.repeats = 2;
  const std::string csv = *dir_ / "out/probe.csv";
  auto r = RunProbeTask(*checkpoint_, c, csv);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& m = r->metrics;
  for (const char* l : {"16", "32"}) {
    for (const char* b : {"1", "2"}) {
      const std::string p = std::string("probe/L") + l + "/b" + b + "/";
      for (const char* f : {"forward_ms", "step_ms", "forward_peak_mb", "state_mb", "step_peak_mb", "train_peak_mb"}) {
        ASSERT_TRUE(m.count(p + f)) << p + f << " missing";
        EXPECT_GT(m.at(p + f), 0) << p + f;
      }
      EXPECT_GT(m.at(p + "train_peak_mb"), m.at(p + "forward_peak_mb")) << p << ": backward keeps activations";
    }
  }
  EXPECT_GT(m.at("probe/L32/b2/state_mb"), m.at("probe/L32/b1/state_mb")) << "a bigger batch holds a bigger cache";
  for (const auto& [name, value] : m) EXPECT_EQ(name.find("probe/L128/"), std::string::npos) << name << " = " << value;
  std::ifstream in(csv);
  ASSERT_TRUE(in) << csv;
  std::string header, line;
  std::getline(in, header);
  EXPECT_NE(header.find("train_peak_mb"), std::string::npos) << header;
  int rows = 0;
  while (std::getline(in, line)) ++rows;
  EXPECT_EQ(rows, 6) << "3 lengths x 2 batch sizes, the long one with its note";
  c.probe.lengths.clear();
  auto none = RunProbeTask(*checkpoint_, c, csv);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("probe.lengths"), std::string::npos);
}

TEST_F(TaskRunnersTest, GenerateUsesAndRecordsTheExperimentsSettings) {
  ExperimentConfig c = *config_;
  c.generate.temperature = 0.7;
  c.generate.top_k = 12;
  c.generate.top_p = 0.9;
  c.generate.bars = 2;
  c.generate.max_tokens = 40;
  SampleOptions fallback;
  fallback.bars = 99;
  std::string note;
  const SampleOptions o = SampleOptionsFor(c.ToYaml(), fallback, &note);
  EXPECT_TRUE(note.empty()) << note;
  EXPECT_EQ(o.temperature, 0.7);
  EXPECT_EQ(o.top_k, 12);
  EXPECT_EQ(o.top_p, 0.9);
  EXPECT_EQ(o.bars, 2);
  EXPECT_EQ(o.max_tokens, 40);
  const SampleOptions bad = SampleOptionsFor("model: [", fallback, &note);
  EXPECT_EQ(bad.bars, 99) << "a YAML that does not parse falls back to the worker's flags";
  EXPECT_FALSE(note.empty());

  const std::string samples = *dir_ / "samples";
  auto r = RunGenerateTask(*checkpoint_, {5}, 0, samples, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->metrics.at("generate/temperature"), 0.7);
  EXPECT_EQ(r->metrics.at("generate/top_k"), 12);
  EXPECT_EQ(r->metrics.at("generate/top_p"), 0.9);
  EXPECT_EQ(r->metrics.at("generate/bars"), 2);
  EXPECT_EQ(r->metrics.at("generate/max_tokens"), 40);
  EXPECT_LE(r->metrics.at("new_tokens"), 41) << "max_tokens, plus the EOS that closes a sample cut by the budget";
  std::ifstream in(fs::path(samples) / "sample-000.json");
  ASSERT_TRUE(in);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["bars"], 2);
  EXPECT_EQ(j["max_tokens"], 40);
  EXPECT_EQ(j["top_k"], 12);
}

// generate.primer_split: each sample continues the opening bars of a piece of the split, picked by its seed; the
// written MIDI holds the continuation alone unless keep_primer, and the JSON names the primer piece.
TEST_F(TaskRunnersTest, PrimedSamplesContinueAPieceOfTheSplitChosenBySeed) {
  ExperimentConfig c = *config_;
  c.generate.bars = 2;
  c.generate.max_tokens = 200;
  c.generate.primer_split = "val";
  c.generate.primer_bars = 2;
  std::string note;
  SampleOptions o = SampleOptionsFor(c.ToYaml(), SampleOptions(), &note);
  EXPECT_EQ(o.dataset, c.dataset);
  const std::string samples = *dir_ / "primed";
  auto r = RunGenerateTask(*checkpoint_, {5, 6}, 0, samples, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->metrics.at("generate/primer_bars"), 2);
  const Vocabulary& v = Vocabulary::Get();
  for (const char* name : {"sample-000.json", "sample-001.json"}) {
    std::ifstream in(fs::path(samples) / name);
    ASSERT_TRUE(in) << name;
    const nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_FALSE(j["primer_piece"].get<std::string>().empty());
    const auto tokens = j["tokens"].get<std::vector<int32_t>>();
    const auto written = j["written_tokens"].get<std::vector<int32_t>>();
    const size_t primer = j["primer_tokens"].get<size_t>();
    EXPECT_GT(primer, 4u);
    int primer_bars = 0;
    for (size_t i = 0; i < primer; ++i) primer_bars += tokens[i] == v.Bar() ? 1 : 0;
    EXPECT_EQ(primer_bars, 2) << "the primer is the piece's first two bars";
    ASSERT_GE(written.size(), 2u);
    EXPECT_EQ(written[0], v.Bos());
    EXPECT_TRUE(written[1] == v.Bar() || written[1] == v.Eos()) << "the continuation starts at a new bar";
    EXPECT_LT(written.size(), tokens.size()) << "the primer is not written";
  }
  // The same seed gives the same primer piece; keep_primer writes the whole sample.
  o.keep_primer = true;
  auto again = RunGenerateTask(*checkpoint_, {5}, 0, *dir_ / "primed-kept", o);
  ASSERT_TRUE(again.ok()) << again.status().message();
  std::ifstream a(fs::path(samples) / "sample-000.json"), b(*dir_ / "primed-kept/sample-000.json");
  const nlohmann::json ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  EXPECT_EQ(ja["primer_piece"], jb["primer_piece"]);
  EXPECT_EQ(jb["written_tokens"], jb["tokens"]);
  // A dataset without such pieces is an error naming the key.
  o.primer_bars = 100000;
  auto none = RunGenerateTask(*checkpoint_, {5}, 0, *dir_ / "primed-none", o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("generate.primer_bars"), std::string::npos) << none.status().message();
}

TEST_F(TaskRunnersTest, TrainDataMetricsDescribeTheSubset) {
  ExperimentConfig c = *config_;
  c.train.data_fraction = 0.5;
  auto w = OpenExperimentWindows(c);
  ASSERT_TRUE(w.ok()) << w.status().message();
  std::map<std::string, double> m;
  AddTrainDataMetrics(w->train_pieces, w->train_tokens, c, 6, &m);
  EXPECT_EQ(m.at("data/train_pieces"), double(w->train_pieces));
  EXPECT_EQ(m.at("data/train_tokens"), double(w->train_tokens));
  EXPECT_EQ(m.at("data/fraction"), 0.5);
  EXPECT_EQ(m.at("train/steps"), 6);
  EXPECT_EQ(m.at("train/tokens_seen"), 6.0 * 4 * 48);
}

}  // namespace
}  // namespace cadenza
