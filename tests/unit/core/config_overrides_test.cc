// key=value overrides: applied to the YAML, malformed ones named, bad keys found by the experiment parser.
#include "core/config_overrides.h"

#include <gtest/gtest.h>

#include "core/experiment_config.h"

namespace cadenza {
namespace {

const char* kYaml =
    "name: x\ndataset: /d\nout: /o\nmodel: {family: transformer, d_model: 64, layers: 2, heads: 4, ff_dim: 128, max_len: 256}\n"
    "train: {seq_len: 64, steps: 10}\n";

TEST(ConfigOverridesTest, AppliesDottedKeys) {
  auto text = ApplyOverrides(kYaml, {"train.steps=300", "model.dropout=0.2", "train.lr=1e-3", "name=y"});
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto c = ParseExperimentConfig(*text, "exp.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->train.steps, 300);
  EXPECT_DOUBLE_EQ(c->model.dropout, 0.2);
  EXPECT_DOUBLE_EQ(c->train.lr, 1e-3);
  EXPECT_EQ(c->name, "y");
  EXPECT_EQ(c->train.seq_len, 64);  // untouched keys stay
}

TEST(ConfigOverridesTest, ErrorsNameTheOverrideOrTheKey) {
  EXPECT_NE(ApplyOverrides(kYaml, {"train.steps"}).status().message().find("override 'train.steps': expected key=value"), std::string::npos);
  EXPECT_NE(ApplyOverrides(kYaml, {"=3"}).status().message().find("expected key=value"), std::string::npos);
  EXPECT_NE(ApplyOverrides(kYaml, {"train.steps="}).status().message().find("override train.steps: expected a value"), std::string::npos);
  EXPECT_NE(ApplyOverrides(kYaml, {"name.x=1"}).status().message().find("override name.x: name is not a mapping"), std::string::npos);
  auto text = ApplyOverrides(kYaml, {"train.stepz=3"});
  ASSERT_TRUE(text.ok());
  auto c = ParseExperimentConfig(*text, "exp.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("train.stepz"), std::string::npos) << c.status().message();
  text = ApplyOverrides(kYaml, {"train.steps=-5"});
  ASSERT_TRUE(text.ok());
  EXPECT_NE(ParseExperimentConfig(*text, "exp.yaml").status().message().find("train.steps"), std::string::npos);
}

}  // namespace
}  // namespace cadenza
