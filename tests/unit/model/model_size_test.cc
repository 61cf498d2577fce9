// CountModelParameters (analytic, torch-free) equals the parameter count of the LibTorch model it describes.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/experiment_config.h"
#include "core/model/model_api.h"
#include "core/model_size.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

void ExpectExact(ModelConfig m, const std::string& what) {
  auto analytic = CountModelParameters(m);
  ASSERT_TRUE(analytic.ok()) << what << ": " << analytic.status().message();
  if (m.vocab_size == 0) m.vocab_size = Vocabulary::Get().size();
  auto built = CountParameters(m);
  ASSERT_TRUE(built.ok()) << what << ": " << built.status().message();
  EXPECT_EQ(*analytic, *built) << what;
}

TEST(ModelSize, EqualsTheBuiltModelForEveryShippedConfig) {
  const std::filesystem::path dir = std::filesystem::path(CADENZA_SOURCE_DIR) / "configs" / "models";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto m = LoadModelConfig(entry.path().string());
    ASSERT_TRUE(m.ok()) << m.status().message();
    ExpectExact(*m, entry.path().filename().string());
    ++checked;
  }
  EXPECT_GE(checked, 6) << "configs/models/ should hold the base and tiny configs of three families";
}

TEST(ModelSize, EqualsTheBuiltModelForVariations) {
  ModelConfig base;
  base.vocab_size = Vocabulary::Get().size();
  base.d_model = 48;
  base.hidden = 40;
  base.heads = 4;
  base.ff_dim = 72;
  base.max_len = 64;
  base.dropout = 0.1;
  for (const std::string family : {"transformer", "lstm", "gru"}) {
    for (int layers : {1, 2, 3}) {
      for (bool tied : {true, false}) {
        for (const std::string attention : {"dot", "general", "additive"}) {
          for (int window : {0, 16}) {
            if (family == "transformer" && (attention != "general" || window != 0)) continue;  // RNN-only keys
            ModelConfig m = base;
            m.family = family;
            m.layers = layers;
            m.tie_embeddings = tied;
            m.attention = attention;
            m.attention_window = window;
            ExpectExact(m, family + " layers=" + std::to_string(layers) + (tied ? " tied " : " untied ") + attention +
                               " window=" + std::to_string(window));
          }
        }
      }
    }
  }
}

TEST(ModelSize, TakesTheVocabularyWhenTheConfigHasNone) {
  ModelConfig m;  // transformer defaults
  m.vocab_size = 0;
  auto zero = CountModelParameters(m);
  m.vocab_size = Vocabulary::Get().size();
  auto filled = CountModelParameters(m);
  ASSERT_TRUE(zero.ok() && filled.ok());
  EXPECT_EQ(*zero, *filled);
  ExpectExact(m, "default transformer");
}

TEST(ModelSize, RefusesAnInvalidConfig) {
  ModelConfig m;
  m.heads = 5;  // does not divide d_model 256
  auto n = CountModelParameters(m);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("heads"), std::string::npos) << n.status().message();
}

}  // namespace
}  // namespace cadenza
