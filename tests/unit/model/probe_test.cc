// Efficiency probes: one row per length, memory that follows the model's arithmetic, clear errors.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/model/probe.h"

namespace cadenza {
namespace {

const std::string kTinyTransformer = CADENZA_SOURCE_DIR "/configs/models/transformer-tiny.yaml";
const std::string kTinyLstm = CADENZA_SOURCE_DIR "/configs/models/lstm-tiny.yaml";

ProbeOptions Quick(std::vector<int64_t> lengths) {
  ProbeOptions o;
  o.lengths = std::move(lengths);
  o.warmup = 1;
  o.repeats = 3;
  return o;
}

TEST(ProbeTest, TransformerRowsFollowTheModelsArithmetic) {
  auto rows = ProbeModel(kTinyTransformer, Quick({32, 128}));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  for (const ProbeRow& r : *rows) {
    EXPECT_EQ(r.family, "transformer");
    EXPECT_GT(r.parameters, 0);
    EXPECT_GT(r.forward_ms, 0);
    EXPECT_LE(r.forward_ms_min, r.forward_ms);
    EXPECT_GE(r.forward_ms_max, r.forward_ms);
    EXPECT_GT(r.step_ms, 0);
    EXPECT_TRUE(r.note.empty()) << r.note;
    // The key/value cache: 2 tensors per layer of [batch, heads, length + repeats, head_dim] floats
    // (tiny: 2 layers, d_model 64), sized for the context the probe steps to.
    const double cache_bytes = 2.0 * 2 * 64 * 4 * (r.length + 3);
    EXPECT_NEAR(r.state_mb * 1024 * 1024, cache_bytes, 2048) << "length " << r.length;
    EXPECT_GE(r.step_peak_mb, r.state_mb);
  }
  // The fused attention kernel (head size 16 here) keeps no [heads, T, T] scores in a forward without grad:
  // four times the length needs about four times the memory (activations and logits), not sixteen.
  const double growth = (*rows)[1].forward_peak_mb / (*rows)[0].forward_peak_mb;
  EXPECT_GT(growth, 2.0);
  EXPECT_LT(growth, 4.5);
}

TEST(ProbeTest, RnnHasNoContextLimitAndSmallState) {
  auto rows = ProbeModel(kTinyLstm, Quick({16, 64}));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].family, "lstm");
  for (const ProbeRow& r : *rows) {
    EXPECT_GT(r.forward_ms, 0);
    EXPECT_GT(r.step_ms, 0);
    EXPECT_GT(r.state_mb, 0);
  }
  EXPECT_GT((*rows)[1].state_mb, (*rows)[0].state_mb);  // the attention history grows with the context
}

TEST(ProbeTest, LengthBeyondTheContextIsANoteNotAFailure) {
  auto rows = ProbeModel(kTinyTransformer, Quick({16, 600}));  // tiny max_len is 512
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_TRUE((*rows)[0].note.empty());
  EXPECT_NE((*rows)[1].note.find("context (512 tokens)"), std::string::npos) << (*rows)[1].note;
  EXPECT_EQ((*rows)[1].forward_ms, 0);
  EXPECT_TRUE((*rows)[0].forward_measured && (*rows)[0].step_measured);
  EXPECT_FALSE((*rows)[1].forward_measured || (*rows)[1].step_measured) << "what the probe task leaves out of its metrics";
  EXPECT_GT((*rows)[0].train_peak_mb, (*rows)[0].forward_peak_mb) << "a backward pass keeps activations and gradients";
  EXPECT_EQ((*rows)[1].train_peak_mb, 0);

  const std::string csv = ProbeCsv(*rows);
  std::istringstream in(csv);
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("model,family,parameters,length,batch,forward_ms,", 0), 0u) << header;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 2);
  EXPECT_NE(csv.find("\"longer than the model's context (512 tokens)\""), std::string::npos);
}

TEST(ProbeTest, BadInputsAreNamed) {
  auto wrong_kind = ProbeModel("/etc/hostname", Quick({16}));
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_NE(wrong_kind.status().message().find("/etc/hostname: expected a checkpoint (.pt) or a model config (.yaml)"),
            std::string::npos)
      << wrong_kind.status().message();
  auto missing = ProbeModel("/nonexistent/best.pt", Quick({16}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/best.pt"), std::string::npos) << missing.status().message();
  auto bad_length = ProbeModel(kTinyTransformer, Quick({16, 0}));
  ASSERT_FALSE(bad_length.ok());
  EXPECT_NE(bad_length.status().message().find("lengths: 0"), std::string::npos) << bad_length.status().message();
}

}  // namespace
}  // namespace cadenza
