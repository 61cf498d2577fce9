// Experiment YAML: the scaling-study keys (train.data_fraction/epochs, generate:, score:, probe:) parse, validate
// with errors that name the key, round-trip through ToYaml, and old files keep their meaning.
#include "core/config_keys.h"
#include "core/config_overrides.h"
#include "core/experiment_config.h"
#include "core/yaml_reader.h"
#include "tests/support/yaml_keys.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <set>

namespace cadenza {
namespace {

const char* kBase = R"(name: e
dataset: ds
out: runs/e
model: {family: lstm, d_model: 32, layers: 1, hidden: 40}
)";

StatusOr<ExperimentConfig> Parse(const std::string& extra) { return ParseExperimentConfig(std::string(kBase) + extra, "exp.yaml"); }

void ExpectError(const std::string& extra, const std::string& key, const std::string& what = "") {
  auto c = Parse(extra);
  ASSERT_FALSE(c.ok()) << "accepted:\n" << extra;
  EXPECT_NE(c.status().message().find("exp.yaml: " + key + ":"), std::string::npos) << c.status().message();
  if (!what.empty()) {
    EXPECT_NE(c.status().message().find(what), std::string::npos) << c.status().message();
  }
}

TEST(ExperimentConfigTest, OldFilesGetTheDefaults) {
  auto c = Parse("train: {steps: 10}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->train.steps, 10);
  EXPECT_EQ(c->train.data_fraction, 1.0);
  EXPECT_EQ(c->train.epochs, 0.0);
  EXPECT_EQ(c->generate.temperature, 1.0);
  EXPECT_EQ(c->generate.top_k, 0);
  EXPECT_EQ(c->generate.top_p, 0.95);
  EXPECT_EQ(c->generate.bars, 8);
  EXPECT_EQ(c->generate.max_tokens, 1500);
  EXPECT_EQ(c->score.splits, (std::vector<std::string>{"val", "test"}));
  EXPECT_TRUE(c->score.on.empty());
  EXPECT_TRUE(c->probe.lengths.empty());
  EXPECT_EQ(c->probe.batch_sizes, (std::vector<int64_t>{1}));
  EXPECT_EQ(c->probe.repeats, 3);
}

TEST(ExperimentConfigTest, ShippedExperimentsStillParseAndRoundTrip) {
  const std::filesystem::path dir = std::filesystem::path(CADENZA_SOURCE_DIR) / "configs" / "experiments";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto c = LoadExperimentConfig(entry.path().string());
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->train.data_fraction, 1.0) << entry.path();
    EXPECT_EQ(c->train.epochs, 0.0) << entry.path();
    auto again = ParseExperimentConfig(c->ToYaml(), "dumped");
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << c->ToYaml();
    EXPECT_EQ(again->ToYaml(), c->ToYaml());
    ++n;
  }
  EXPECT_GT(n, 0);
}

TEST(ExperimentConfigTest, ScalingKeysParseAndRoundTrip) {
  auto c = Parse(R"(train: {steps: 10, data_fraction: 0.25, epochs: 1.5, eval_samples: 4, eval_sample_bars: 6}
generate: {temperature: 0.9, top_k: 40, top_p: 1.0, bars: 16, max_tokens: 3000, primer_split: test, primer_bars: 3,
           keep_primer: true}
score: {splits: [test], on: [../corpora/jsb/, other], windows: every_bar}
probe: {lengths: [64, 4096], batch_sizes: [1, 8], repeats: 5}
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->train.data_fraction, 0.25);
  EXPECT_EQ(c->train.epochs, 1.5);
  EXPECT_EQ(c->generate.temperature, 0.9);
  EXPECT_EQ(c->generate.top_k, 40);
  EXPECT_EQ(c->generate.top_p, 1.0);
  EXPECT_EQ(c->generate.bars, 16);
  EXPECT_EQ(c->generate.max_tokens, 3000);
  EXPECT_EQ(c->generate.primer_split, "test");
  EXPECT_EQ(c->generate.primer_bars, 3);
  EXPECT_TRUE(c->generate.keep_primer);
  EXPECT_EQ(c->train.eval_samples, 4);
  EXPECT_EQ(c->train.eval_sample_bars, 6);
  EXPECT_EQ(c->score.windows, "every_bar");
  EXPECT_EQ(c->score.splits, (std::vector<std::string>{"test"}));
  EXPECT_EQ(c->score.on, (std::vector<std::string>{"../corpora/jsb/", "other"}));
  EXPECT_EQ(c->probe.lengths, (std::vector<int64_t>{64, 4096}));
  EXPECT_EQ(c->probe.batch_sizes, (std::vector<int64_t>{1, 8}));
  EXPECT_EQ(c->probe.repeats, 5);
  const std::string yaml = c->ToYaml();
  for (const char* key : {"data_fraction: 0.25", "epochs: 1.5", "top_k: 40", "max_tokens: 3000", "repeats: 5",
                          "eval_samples: 4", "primer_split: test", "keep_primer: true", "windows: every_bar"}) {
    EXPECT_NE(yaml.find(key), std::string::npos) << key << " missing from\n" << yaml;
  }
  auto again = ParseExperimentConfig(yaml, "dumped");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << yaml;
  EXPECT_EQ(again->ToYaml(), yaml);
  EXPECT_EQ(again->score.on, c->score.on);
  EXPECT_EQ(again->probe.lengths, c->probe.lengths);
}

TEST(ExperimentConfigTest, BadScalingValuesNameTheKey) {
  ExpectError("train: {data_fraction: 0}\n", "train.data_fraction", "0 < data_fraction <= 1");
  ExpectError("train: {data_fraction: 1.5}\n", "train.data_fraction");
  ExpectError("train: {epochs: -1}\n", "train.epochs");
  ExpectError("train: {epochs: many}\n", "train.epochs", "expected a number");
  ExpectError("generate: {top_p: 0}\n", "generate.top_p");
  ExpectError("generate: {temperature: -1}\n", "generate.temperature");
  ExpectError("generate: {top_k: -3}\n", "generate.top_k");
  ExpectError("generate: {bars: -1}\n", "generate.bars");
  ExpectError("generate: {max_tokens: 0}\n", "generate.max_tokens");
  ExpectError("generate: {beams: 4}\n", "generate.beams", "unknown key (expected one of: ");  // nothing within 3 edits
  ExpectError("train: {warmup_step: 4}\n", "train.warmup_step", "unknown key (did you mean train.warmup_steps?; ");
  ExpectError("score: {splits: [valid]}\n", "score.splits", "expected train, val or test");
  ExpectError("score: {splits: test}\n", "score.splits", "expected a list");
  ExpectError("score: {splits: [test, test]}\n", "score.splits", "twice");
  ExpectError("score: {on: [a/jsb, b/jsb/]}\n", "score.on", "'jsb'");
  ExpectError("probe: {lengths: [64, 0]}\n", "probe.lengths");
  ExpectError("probe: {lengths: [64, x]}\n", "probe.lengths[1]", "an integer");
  ExpectError("probe: {batch_sizes: []}\n", "probe.batch_sizes");
  ExpectError("probe: {repeats: 0}\n", "probe.repeats");
  ExpectError("train: {eval_samples: -1}\n", "train.eval_samples");
  ExpectError("train: {eval_sample_bars: 0}\n", "train.eval_sample_bars");
  ExpectError("generate: {primer_split: validation}\n", "generate.primer_split", "expected val, test or train");
  ExpectError("generate: {primer_bars: 0}\n", "generate.primer_bars");
  ExpectError("score: {windows: sliding}\n", "score.windows", "expected tiled or every_bar");
}

// train.precision: fp32 (the default, also for files written before the key) or bf16; anything else is named.
TEST(ExperimentConfigTest, PrecisionParsesRoundTripsAndNamesABadValue) {
  auto old = Parse("train: {steps: 10}\n");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->train.precision, "fp32");
  auto c = Parse("train: {precision: bf16}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->train.precision, "bf16");
  auto again = ParseExperimentConfig(c->ToYaml(), "dumped");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->train.precision, "bf16");
  EXPECT_NE(c->ToYaml().find("precision: bf16"), std::string::npos) << c->ToYaml();
  ExpectError("train: {precision: fp16}\n", "train.precision", "expected fp32 or bf16, found 'fp16'");
  ExpectError("train: {precision: BF16}\n", "train.precision", "'BF16'");
  ExpectError("train: {precision: [bf16]}\n", "train.precision");
}

// A run's config.yaml carries its provenance and still reads back as the same experiment.
TEST(ExperimentConfigTest, RunConfigRecordsProvenanceAndReadsBackAsTheConfig) {
  auto c = Parse("train: {steps: 10}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const std::string text = RunConfigYaml(*c, {"abc123-dirty", "cadenza-model train 'my exp.yaml'", "ff00"});
  for (const char* want : {"provenance:", "git_commit: abc123-dirty", "dataset_manifest_sha256: ff00", "my exp.yaml"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << " missing from\n" << text;
  }
  auto again = ParseExperimentConfig(text, "config.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << text;
  EXPECT_EQ(again->ToYaml(), c->ToYaml());
}

TEST(ExperimentConfigTest, EpochsResolveToSteps) {
  auto c = Parse("train: {steps: 10, batch_size: 4, seq_len: 64, epochs: 2}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE(ResolveTrainSteps(&*c, 1000).ok());
  EXPECT_EQ(c->train.steps, 8);  // ceil(2 * 1000 / 256)
  EXPECT_NE(c->ToYaml().find("steps: 8"), std::string::npos);
  auto d = Parse("train: {steps: 10}\n");
  ASSERT_TRUE(ResolveTrainSteps(&*d, 1000).ok());
  EXPECT_EQ(d->train.steps, 10) << "epochs 0: train.steps as written";
  c->train.epochs = 1;
  auto bad = ResolveTrainSteps(&*c, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("train.epochs"), std::string::npos);
}

// One field table per config: the keys `cadenza config keys` lists are those the parser accepts and the dumper
// writes, each with its default as the dump writes it.
TEST(ExperimentConfigTest, TheListedKeysAreThoseParsedAndDumpedWithTheirDefaults) {
  std::map<std::string, ConfigKeyDoc> listed;
  for (const ConfigKeyDoc& k : ExperimentConfigKeys()) {
    EXPECT_TRUE(listed.emplace(k.key, k).second) << k.key << " listed twice";
    EXPECT_FALSE(k.type.empty()) << k.key;
    EXPECT_FALSE(k.doc.empty()) << k.key;
  }
  ASSERT_TRUE(listed.count("train.warmup_steps"));
  EXPECT_EQ(listed["train.warmup_steps"].type, "integer");
  EXPECT_EQ(listed["train.warmup_steps"].default_value, "100");
  EXPECT_EQ(listed["train.warmup_steps"].allowed, ">= 0");
  EXPECT_EQ(listed["train.precision"].allowed, "fp32 | bf16");
  EXPECT_EQ(listed["train.lr"].default_value, "0.0003");
  EXPECT_EQ(listed["train.data_fraction"].allowed, "0 < data_fraction <= 1 (the share of the train split's pieces)");
  EXPECT_NE(listed["model.heads"].doc.find("(transformer only)"), std::string::npos) << listed["model.heads"].doc;

  // Every key of a dumped transformer and LSTM experiment is listed, with the dump's value as its default.
  std::set<std::string> dumped;
  for (const char* family : {"transformer", "lstm"}) {
    ExperimentConfig c;
    c.model.family = family;
    std::map<std::string, std::string> values;
    testing::FlattenYamlKeys(YAML::Load(c.ToYaml()), "", &values);
    for (const auto& [key, value] : values) {
      dumped.insert(key);
      ASSERT_TRUE(listed.count(key)) << key << " is dumped but not listed";
      if (key == "model.family") continue;
      if (listed[key].type == "number") {  // listed short (0.1), dumped exact (0.10000000000000001)
        EXPECT_EQ(std::stod(listed[key].default_value), std::stod(value)) << key;
      } else {
        EXPECT_EQ(listed[key].default_value, value) << key;
      }
    }
  }
  // ... and every listed key is dumped and accepted by the parser, as an override of its default.
  const std::string transformer = "name: e\ndataset: ds\nout: o\nmodel: {family: transformer, d_model: 32, heads: 4}\n";
  const std::string lstm = "name: e\ndataset: ds\nout: o\nmodel: {family: lstm, d_model: 32, hidden: 40}\n";
  for (const auto& [key, k] : listed) {
    if (key == "model") continue;
    EXPECT_TRUE(dumped.count(key)) << key << " is listed but never dumped";
    if (key == "dataset" || key == "out") continue;  // required: their default "" is refused
    const bool rnn_key = k.doc.find("(lstm/gru only)") != std::string::npos;
    auto text = ApplyOverrides(rnn_key ? lstm : transformer, {key + "=" + k.default_value});
    ASSERT_TRUE(text.ok()) << key << ": " << text.status().message();
    auto c = ParseExperimentConfig(*text, "exp.yaml");
    EXPECT_TRUE(c.ok()) << key << "=" << k.default_value << ": " << c.status().message();
  }
  const std::string printed = FormatConfigKeys(ExperimentConfigKeys());
  EXPECT_NE(printed.find("train.warmup_steps"), std::string::npos) << printed;
  EXPECT_NE(printed.find("linear warm-up"), std::string::npos) << printed;
}

// A key written under the wrong section is named with the section that has it.
TEST(ExperimentConfigTest, AKeyInTheWrongSectionNamesWhereItBelongs) {
  ExpectError("train: {temperature: 0.9}\n", "train.temperature", "did you mean generate.temperature? it belongs under generate:");
  ExpectError("steps: 10\n", "steps", "did you mean train.steps? it belongs under train:");
  ExpectError("generate: {name: x}\n", "generate.name", "it belongs under the top level");
  ExpectError("train: {dropout: 0.2}\n", "train.dropout", "did you mean model.dropout? it belongs under model:");
}

}  // namespace
}  // namespace cadenza

namespace cadenza {
namespace {

// Issue 15: what yaml-cpp would accept silently is an error naming the key.
TEST(ExperimentConfigTest, DuplicateKeysOtherFamilyKeysAndNonFiniteNumbersNameTheKey) {
  ExpectError("train: {steps: 10, lr: 0.1, lr: 0.2}\n", "train.lr", "appears twice");
  ExpectError("train: {steps: 10}\ntrain: {steps: 20}\n", "train", "appears twice");
  auto dup_model = ParseExperimentConfig("name: e\ndataset: ds\nout: o\nmodel: {family: gru, hidden: 40, hidden: 48, d_model: 32}\n", "exp.yaml");
  ASSERT_FALSE(dup_model.ok());
  EXPECT_NE(dup_model.status().message().find("exp.yaml: model.hidden: appears twice"), std::string::npos) << dup_model.status().message();
  // `heads` on an LSTM, `hidden` on a Transformer: keys of the other family.
  auto heads = ParseExperimentConfig("name: e\ndataset: ds\nout: o\nmodel: {family: lstm, d_model: 32, hidden: 40, heads: 4}\n", "exp.yaml");
  ASSERT_FALSE(heads.ok());
  EXPECT_NE(heads.status().message().find("exp.yaml: model.heads: a transformer key, but family is lstm"), std::string::npos)
      << heads.status().message();
  auto hidden = ParseExperimentConfig("name: e\ndataset: ds\nout: o\nmodel: {family: transformer, d_model: 32, heads: 4, attention: dot}\n", "exp.yaml");
  ASSERT_FALSE(hidden.ok());
  EXPECT_NE(hidden.status().message().find("exp.yaml: model.attention: a lstm/gru key, but family is transformer"), std::string::npos)
      << hidden.status().message();
  ExpectError("train: {steps: 10, lr: .inf}\n", "train.lr", "expected a finite number, found '.inf'");
  ExpectError("train: {steps: 10, grad_clip: .nan}\n", "train.grad_clip", "finite");
  ExpectError("generate: {temperature: -.inf}\n", "generate.temperature", "finite");
  // The same cap as the --threads flags.
  ExpectError("train: {steps: 10, threads: 100000}\n", "train.threads", "expected 0..256");
  EXPECT_TRUE(Parse("train: {steps: 10, threads: 256}\n").ok());
}

}  // namespace
}  // namespace cadenza

// "did you mean": the nearest key within a few edits (fewer for short keys), or the key a truncated one begins.
TEST(YamlReaderTest, NearestKeyIsATypoOrATruncationNotAnotherWord) {
  const std::set<std::string> keys = {"bars", "epochs", "max_groups", "period_ms", "warmup_steps", "seeds"};
  EXPECT_EQ(cadenza::NearestKey("epoch", keys), "epochs");
  EXPECT_EQ(cadenza::NearestKey("warmup_step", keys), "warmup_steps");
  EXPECT_EQ(cadenza::NearestKey("max_grups", keys), "max_groups");
  EXPECT_EQ(cadenza::NearestKey("period", keys), "period_ms");
  EXPECT_EQ(cadenza::NearestKey("seed", keys), "seeds");
  EXPECT_EQ(cadenza::NearestKey("beams", keys), "");  // two edits from "bars": another word
  EXPECT_EQ(cadenza::NearestKey("colour", keys), "");
  EXPECT_EQ(cadenza::EditDistance("kitten", "sitting"), 3u);
}
