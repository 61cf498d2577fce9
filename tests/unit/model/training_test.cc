// Training, checkpoints and generation through the torch-free API, as the CLI and workers use them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "core/model/checkpoint.h"
#include "core/model/mixed_precision.h"
#include "core/model/model_api.h"
#include "core/model/precision.h"
#include "core/model/sequence_model.h"
#include "core/model/trainer.h"
#include "core/segmentation.h"
#include "core/synthetic.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"
#include "tests/unit/model/memory_windows.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_train_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ExperimentConfig Config(const std::string& family, const std::string& run) {
    ExperimentConfig c;
    c.name = run;
    c.dataset = "memory";
    c.out = (dir_ / run).string();
    c.model.family = family;
    c.model.vocab_size = Vocabulary::Get().size();
    c.model.d_model = 48;
    c.model.layers = 1;
    c.model.heads = 4;
    c.model.ff_dim = 96;
    c.model.max_len = 128;
    c.model.hidden = 64;
    c.model.attention = "general";
    c.model.dropout = 0.1;
    c.train.seq_len = 64;
    c.train.batch_size = 4;
    c.train.steps = 8;
    c.train.lr = 3e-3;
    c.train.warmup_steps = 2;
    c.train.eval_every = 4;
    c.train.eval_windows = 8;
    c.train.threads = 1;
    return c;
  }
  TrainOptions Quiet() {
    TrainOptions o;
    o.progress = false;
    return o;
  }
  fs::path dir_;
  MemoryWindows train_{6, 65, 1}, val_{2, 65, 99};
};

TEST_F(TrainingTest, BothFamiliesLearnAndWriteTheirRun) {
  for (const std::string family : {"transformer", "lstm"}) {
    ExperimentConfig c = Config(family, family);
    c.train.steps = 200;
    c.train.eval_every = 100;
    if (family == "lstm") c.train.lr = 1e-2;  // RNNs take a larger step size
    auto s = Train(c, train_, val_, Quiet());
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->steps, 200);
    std::printf("%s: best val NLL/token %.3f\n", family.c_str(), s->best_val_nll);
    // Uniform guessing over 628 tokens costs ln(628) = 6.44 nats; the grammar alone is worth much more than that.
    EXPECT_LT(s->best_val_nll, 3.5) << family;
    EXPECT_NEAR(s->best_val_perplexity, std::exp(s->best_val_nll), 1e-6 * s->best_val_perplexity);
    EXPECT_GT(s->best_val_nll_per_bar, s->best_val_nll);  // a bar holds many tokens
    for (const char* f : {"config.yaml", "metrics.csv", "metrics.jsonl", "checkpoints/latest.pt", "checkpoints/best.pt", "model_state.pt"}) {
      EXPECT_TRUE(fs::exists(fs::path(c.out) / f)) << family << ": " << f;
    }
    std::ifstream csv(fs::path(c.out) / "metrics.csv");
    std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("100,val/nll_per_token,"), std::string::npos) << text.substr(0, 200);
    EXPECT_NE(text.find("200,val/perplexity,"), std::string::npos);
    EXPECT_TRUE(fs::is_directory(fs::path(c.out) / "tensorboard"));
    auto stored = LoadExperimentConfig((fs::path(c.out) / "config.yaml").string());
    ASSERT_TRUE(stored.ok()) << stored.status().message();
    EXPECT_EQ(stored->ToYaml(), c.ToYaml());
  }
}

// A few windows repeated: both families must memorise them (the "overfit to near-zero loss").
class FewWindows : public WindowSource {
 public:
  explicit FewWindows(const WindowSource& from, int64_t count) : length_(from.length()), data_(count * from.length()) {
    from.Fill(0, 0, count, data_.data());
  }
  int64_t length() const override { return length_; }
  int64_t WindowsPerEpoch() const override { return static_cast<int64_t>(data_.size()) / length_; }
  void Fill(int64_t, int64_t first, int64_t count, int32_t* out) const override {
    std::copy(data_.begin() + first * length_, data_.begin() + (first + count) * length_, out);
  }

 private:
  int64_t length_;
  std::vector<int32_t> data_;
};

// train.eval_samples: every validation samples pieces and logs their structure beside the NLL, without
// changing what training computes (its random stream is untouched).
TEST_F(TrainingTest, ValidationSamplesStructureWithoutChangingTraining) {
  ExperimentConfig plain = Config("transformer", "plain");
  auto a = Train(plain, train_, val_, Quiet());
  ASSERT_TRUE(a.ok()) << a.status().message();
  ExperimentConfig sampled = Config("transformer", "sampled");
  sampled.train.eval_samples = 3;
  sampled.train.eval_sample_bars = 4;
  sampled.generate.max_tokens = 300;
  TrainOptions o = Quiet();
  o.dataset_manifest_sha256 = "0123abcd";
  auto b = Train(sampled, train_, val_, o);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->last_train_loss, a->last_train_loss) << "sampling must not move training's random stream";
  EXPECT_EQ(b->best_val_nll, a->best_val_nll);
  EXPECT_TRUE(a->sample_metrics.empty());
  ASSERT_TRUE(b->sample_metrics.count("sample/pieces"));
  EXPECT_GE(b->sample_metrics.at("sample/pieces"), 1);
  EXPECT_LE(b->sample_metrics.at("sample/pieces"), 3);
  EXPECT_TRUE(b->sample_metrics.count("sample/avg_pitch_deviation"));
  std::ifstream csv(fs::path(sampled.out) / "metrics.csv");
  const std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("4,sample/pieces,"), std::string::npos) << "a curve: one row per validation";
  EXPECT_NE(text.find("8,sample/pieces,"), std::string::npos) << text.substr(0, 300);
  // The run's config.yaml records where it came from and still reads back as its config.
  std::ifstream yaml(fs::path(sampled.out) / "config.yaml");
  const std::string config_text((std::istreambuf_iterator<char>(yaml)), std::istreambuf_iterator<char>());
  EXPECT_NE(config_text.find("dataset_manifest_sha256: 0123abcd"), std::string::npos) << config_text;
  EXPECT_NE(config_text.find("git_commit: "), std::string::npos);
  auto stored = LoadExperimentConfig((fs::path(sampled.out) / "config.yaml").string());
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_EQ(stored->ToYaml(), sampled.ToYaml());
}

TEST_F(TrainingTest, BothFamiliesOverfitATinyCorpus) {
  FewWindows tiny(train_, 4);
  for (const std::string family : {"transformer", "gru"}) {
    ExperimentConfig c = Config(family, "overfit-" + family);
    c.model.dropout = 0;
    c.model.attention = "additive";
    // Vocabulary v2 (1,431 tokens) takes the GRU longer to memorise than the Transformer.
    c.train.steps = family == "transformer" ? 300 : 600;
    c.train.eval_every = c.train.steps;
    c.train.lr = family == "transformer" ? 3e-3 : 1e-2;
    c.train.min_lr_ratio = 1.0;
    c.train.weight_decay = 0;
    auto s = Train(c, tiny, tiny, Quiet());
    ASSERT_TRUE(s.ok()) << s.status().message();
    std::printf("%s: train loss %.4f, NLL/token on the same windows %.4f\n", family.c_str(), s->last_train_loss, s->best_val_nll);
    EXPECT_LT(s->best_val_nll, 0.1) << family;  // 0.1 nats a token: the windows are memorised
  }
}

// With dropout 0.1 on: the counter-based masks take their seeds from the checkpointed generator. Three cases:
// the Transformer with head size 12 (composed attention), with head size 16 (the fused attention kernel, which
// draws its own dropout seed) and the LSTM (fused layers, dropout between them).
// bf16 mixed precision runs on this machine (AVX512_BF16 or AMX-BF16, and oneDNN); the bf16 tests need it.
bool Bf16Runs() { return CheckPrecision("bf16", CurrentCpuFeatures(), "train.precision").ok(); }

// Within one precision: in bf16 too (train.precision: bf16, the GEMMs in bf16 and the rest as in fp32), for the
// fused attention kernel and the fused LSTM.
TEST_F(TrainingTest, ResumeIsBitExact) {
  struct Case {
    std::string family;
    int64_t heads;
    std::string precision = "fp32";
  };
  for (const Case& k : {Case{"transformer", 4}, Case{"transformer", 3}, Case{"lstm", 4}, Case{"transformer", 3, "bf16"},
                        Case{"lstm", 4, "bf16"}}) {
    SCOPED_TRACE(k.family + " with " + std::to_string(k.heads) + " heads, " + k.precision);
    if (k.precision == "bf16" && !Bf16Runs()) {
      std::printf("not checked on this CPU: %s\n", CheckPrecision("bf16", CurrentCpuFeatures(), "train.precision").message().c_str());
      continue;
    }
    const std::string tag = k.family + std::to_string(k.heads) + k.precision;
    ExperimentConfig straight = Config(k.family, "straight-" + tag);
    straight.model.heads = k.heads;
    straight.model.layers = 2;
    straight.train.precision = k.precision;
    auto whole = Train(straight, train_, val_, Quiet());
    ASSERT_TRUE(whole.ok()) << whole.status().message();

    ExperimentConfig split = Config(k.family, "split-" + tag);
    split.model.heads = k.heads;
    split.model.layers = 2;
    split.train.precision = k.precision;
    TrainOptions first = Quiet();
    first.stop_after_steps = 3;  // stops between evaluations: the checkpoint is written for the stop
    auto a = Train(split, train_, val_, first);
    ASSERT_TRUE(a.ok()) << a.status().message();
    EXPECT_TRUE(a->interrupted);
    EXPECT_EQ(a->steps, 3);
    TrainOptions again = Quiet();
    auto refused = Train(split, train_, val_, again);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("--resume"), std::string::npos) << refused.status().message();
    again.resume = true;
    auto b = Train(split, train_, val_, again);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_EQ(b->steps, 8);
    // The resumed run reports what the uninterrupted one did, and so does resuming it once finished (no step
    // left: the values come from the checkpoint, not zeros).
    auto finished = Train(split, train_, val_, again);
    ASSERT_TRUE(finished.ok()) << finished.status().message();
    for (const TrainSummary* r : {&*b, &*finished}) {
      EXPECT_EQ(r->best_val_nll, whole->best_val_nll);
      EXPECT_EQ(r->best_val_perplexity, whole->best_val_perplexity);
      EXPECT_EQ(r->best_val_nll_per_bar, whole->best_val_nll_per_bar);
      EXPECT_EQ(r->last_train_loss, whole->last_train_loss);
      EXPECT_GT(r->best_val_nll_per_bar, 0);
      EXPECT_GT(r->last_train_loss, 0);
    }

    // The same experiment with another config value must not resume from this run.
    ExperimentConfig other = split;
    other.train.lr = 1e-3;
    auto mismatch = Train(other, train_, val_, again);
    ASSERT_FALSE(mismatch.ok());

    auto x = LoadCheckpoint(straight.out + "/checkpoints/latest.pt");
    auto y = LoadCheckpoint(split.out + "/checkpoints/latest.pt");
    ASSERT_TRUE(x.ok() && y.ok());
    auto px = x->model->named_parameters(), py = y->model->named_parameters();
    ASSERT_EQ(px.size(), py.size());
    for (const auto& item : px) EXPECT_TRUE(torch::equal(item.value(), py[item.key()])) << item.key();
    EXPECT_EQ(x->progress.best_val_nll, y->progress.best_val_nll);
  }
}

// train.precision: bf16 on a tiny model of each family: the loss follows fp32's closely (but is not fp32's: the
// GEMMs did run in bf16), the gradients reach the fp32 master weights as fp32, and the checkpoint holds fp32
// weights and fp32 AdamW state (Module::load and the optimizer take the archive's tensors as they are, so a bf16
// tensor there would load as bf16). Inference from a bf16 checkpoint follows it, and is refused on a CPU without bf16.
TEST_F(TrainingTest, Bf16TrainsLikeFp32AndKeepsWeightsOptimizerAndCheckpointsFp32) {
  if (!Bf16Runs()) GTEST_SKIP() << CheckPrecision("bf16", CurrentCpuFeatures(), "train.precision").message();
  for (const std::string family : {"transformer", "lstm", "gru"}) {
    SCOPED_TRACE(family);
    ExperimentConfig fp32 = Config(family, family + "-fp32");
    fp32.model.heads = 3;  // head size 16: the fused attention kernel
    fp32.train.steps = 40;
    fp32.train.eval_every = 20;
    ExperimentConfig bf16 = fp32;
    bf16.name = family + "-bf16";
    bf16.out = (dir_ / bf16.name).string();
    bf16.train.precision = "bf16";
    auto a = Train(fp32, train_, val_, Quiet());
    auto b = Train(bf16, train_, val_, Quiet());
    ASSERT_TRUE(a.ok()) << a.status().message();
    ASSERT_TRUE(b.ok()) << b.status().message();
    std::printf("%s: fp32 loss %.4f val %.4f; bf16 loss %.4f val %.4f\n", family.c_str(), a->last_train_loss,
                a->best_val_nll, b->last_train_loss, b->best_val_nll);
    EXPECT_NE(a->last_train_loss, b->last_train_loss);  // bf16 GEMMs did run
    EXPECT_NEAR(b->last_train_loss, a->last_train_loss, 0.05 * a->last_train_loss);
    EXPECT_NEAR(b->best_val_nll, a->best_val_nll, 0.03 * a->best_val_nll);

    const std::string latest = bf16.out + "/checkpoints/latest.pt";
    auto loaded = LoadCheckpoint(latest);
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    EXPECT_EQ(loaded->config.train.precision, "bf16");
    SequenceModel model = MakeModel(bf16.model);
    std::vector<torch::Tensor> params = model->parameters();
    std::vector<torch::Tensor> decay, no_decay;  // the trainer's two parameter groups
    for (const auto& item : model->named_parameters()) {
      const bool matrix = item.value().dim() >= 2 && item.key().find("embedding") == std::string::npos;
      (matrix ? decay : no_decay).push_back(item.value());
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(1e-3));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(1e-3));
    torch::optim::AdamW optimizer(groups);
    const Status restored = RestoreTrainingState(latest, *model, optimizer);
    ASSERT_TRUE(restored.ok()) << restored.message();
    for (const auto& p : model->named_parameters()) EXPECT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
    size_t states = 0;
    for (const auto& [key, state] : optimizer.state()) {
      const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*state);
      EXPECT_EQ(adam.exp_avg().scalar_type(), torch::kFloat32);
      EXPECT_EQ(adam.exp_avg_sq().scalar_type(), torch::kFloat32);
      ++states;
    }
    EXPECT_EQ(states, params.size());

    // One step's gradients in bf16 land on the fp32 weights as fp32, close to fp32's own gradients.
    auto tokens = torch::randint(1, bf16.model.vocab_size, {2, 33}, torch::kInt64);
    auto inputs = tokens.narrow(1, 0, 32), targets = tokens.narrow(1, 1, 32);
    model->eval();  // no dropout: the two passes see the same function
    std::vector<torch::Tensor> grads32;
    for (bool low : {false, true}) {
      model->zero_grad();
      const Bf16ComputeScope scope(low);
      auto logits = model->forward(inputs);
      EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
      torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1})).backward();
      for (size_t i = 0; i < params.size(); ++i) {
        ASSERT_TRUE(params[i].grad().defined());
        EXPECT_EQ(params[i].grad().scalar_type(), torch::kFloat32);
        EXPECT_EQ(params[i].scalar_type(), torch::kFloat32);
        if (!low) {
          grads32.push_back(params[i].grad().clone());
          continue;
        }
        const auto g = params[i].grad(), r = grads32[i];
        const double cosine = (g * r).sum().item<double>() / std::max(1e-30, (g.norm() * r.norm()).item<double>());
        if (r.norm().item<double>() > 1e-6) {
          EXPECT_GT(cosine, 0.98) << "parameter " << i;
        }
      }
    }

    // Inference follows the checkpoint's precision, and refuses where bf16 cannot run.
    GenerateOptions g;
    g.count = 2;
    g.max_new_tokens = 40;
    g.bars = 1;
    auto samples = GenerateFromCheckpoint(latest, g);
    ASSERT_TRUE(samples.ok()) << samples.status().message();
    EXPECT_EQ(samples->size(), 2u);
    const ScopedCpuFeaturesForTesting no_bf16(CpuFeatures{false, false, true, "a CPU without bf16"});
    auto refused = GenerateFromCheckpoint(latest, g);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find(latest + ": train.precision: bf16 needs a CPU with AVX512_BF16"),
              std::string::npos) << refused.status().message();
    auto scorer = CheckpointScorer::Open(latest);
    ASSERT_FALSE(scorer.ok());
    EXPECT_NE(scorer.status().message().find("(a CPU without bf16) has neither"), std::string::npos) << scorer.status().message();
  }
}

// Where the CPU cannot run bf16 GEMMs (the probe is replaced, so this runs on any machine), train.precision: bf16 is
// refused before anything is written, naming the run, the field, what is missing and the way out; fp32 still trains.
TEST_F(TrainingTest, Bf16IsRefusedWithTheReasonWhereTheCpuCannotRunIt) {
  ExperimentConfig c = Config("transformer", "refused");
  c.train.steps = 2;
  c.train.eval_every = 2;
  c.train.precision = "bf16";
  {
    const ScopedCpuFeaturesForTesting old_cpu(CpuFeatures{false, false, true, "Old CPU 3000"});
    auto r = Train(c, train_, val_, Quiet());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(r.status().message(), "refused: train.precision: bf16 needs a CPU with AVX512_BF16 or AMX-BF16 (bf16 GEMMs with "
                                    "fp32 accumulation); this CPU (Old CPU 3000) has neither: use train.precision: fp32");
    EXPECT_FALSE(fs::exists(fs::path(c.out) / "config.yaml"));
    EXPECT_FALSE(fs::exists(fs::path(c.out) / "checkpoints" / "latest.pt"));
    c.train.precision = "fp32";
    auto fp32 = Train(c, train_, val_, Quiet());
    ASSERT_TRUE(fp32.ok()) << fp32.status().message();
  }
  {
    const ScopedCpuFeaturesForTesting no_onednn(CpuFeatures{true, false, false, "New CPU"});
    auto s = CheckPrecision("bf16", CurrentCpuFeatures(), "exp: train.precision");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("exp: train.precision: bf16 needs a LibTorch built with oneDNN"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(CheckPrecision("bf16", CpuFeatures{false, true, true, "AMX only"}, "f").ok());
  EXPECT_TRUE(CheckPrecision("fp32", CpuFeatures{}, "f").ok());
  auto bad = CheckPrecision("fp16", CpuFeatures{true, true, true, "x"}, "exp: train.precision");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("expected fp32 or bf16, found 'fp16'"), std::string::npos);
}

TEST_F(TrainingTest, EarlyStoppingStopsWhenValidationStopsImproving) {
  ExperimentConfig c = Config("lstm", "early");
  c.train.lr = 1e-12;  // no update changes a float32 weight: validation NLL stays exactly the same
  c.train.weight_decay = 0;
  c.train.steps = 40;
  c.train.eval_every = 2;
  c.train.early_stopping_patience = 2;
  auto s = Train(c, train_, val_, Quiet());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->early_stopped);
  EXPECT_EQ(s->steps, 6);  // eval at 2 improves on nothing-yet, 4 and 6 do not
}

TEST_F(TrainingTest, ScheduleWarmsUpThenDecaysToTheFloor) {
  TrainConfig t;
  t.lr = 1e-3;
  t.warmup_steps = 10;
  t.steps = 110;
  t.min_lr_ratio = 0.1;
  EXPECT_NEAR(LearningRateAt(t, 0), 1e-4, 1e-12);
  EXPECT_NEAR(LearningRateAt(t, 9), 1e-3, 1e-12);
  EXPECT_NEAR(LearningRateAt(t, 60), 0.55e-3, 1e-9);  // half way down the cosine
  EXPECT_NEAR(LearningRateAt(t, 110), 1e-4, 1e-12);
  for (int64_t s = 10; s < 110; ++s) EXPECT_LE(LearningRateAt(t, s + 1), LearningRateAt(t, s) + 1e-15);
}

TEST_F(TrainingTest, GenerationIsReproducibleDecodesAndHonoursBarsAndPrimer) {
  ExperimentConfig c = Config("transformer", "gen");
  c.train.steps = 30;
  c.train.eval_every = 30;
  ASSERT_TRUE(Train(c, train_, val_, Quiet()).ok());
  const std::string ckpt = c.out + "/checkpoints/best.pt";
  GenerateOptions o;
  o.count = 3;
  o.max_new_tokens = 120;
  o.seed = 11;
  auto a = GenerateFromCheckpoint(ckpt, o);
  auto b = GenerateFromCheckpoint(ckpt, o);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_EQ(a->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*a)[i].tokens, (*b)[i].tokens) << "same seed, different music";
    auto score = Tokenizer().Decode((*a)[i].tokens);
    EXPECT_TRUE(score.ok()) << score.status().message();
    EXPECT_EQ((*a)[i].tokens.front(), Vocabulary::Get().Bos());
    EXPECT_EQ((*a)[i].tokens.back(), Vocabulary::Get().Eos());
  }
  o.seed = 12;
  auto other = GenerateFromCheckpoint(ckpt, o);
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)[0].tokens, (*a)[0].tokens);

  // Continue two bars of a tune for exactly two more bars.
  auto enc = Tokenizer().Encode(MakeSyntheticTune(1, 0).score);
  o.primer.assign(enc->tokens.begin(), enc->tokens.begin() + enc->segmentation.bars[2].token_offset);
  o.bars = 2;
  o.max_new_tokens = 400;
  o.count = 2;
  auto primed = GenerateFromCheckpoint(ckpt, o);
  ASSERT_TRUE(primed.ok()) << primed.status().message();
  for (const GeneratedSample& g : *primed) {
    ASSERT_GE(g.tokens.size(), o.primer.size());
    EXPECT_TRUE(std::equal(o.primer.begin(), o.primer.end(), g.tokens.begin())) << "primer not kept";
    auto seg = Segment(g.tokens);
    ASSERT_TRUE(seg.ok()) << seg.status().message();
    EXPECT_LE(seg->bars.size(), 4u);
  }
}

TEST_F(TrainingTest, HiddenStatesOfACheckpointAreCausalDeterministicAndWindowed) {
  for (const std::string family : {"transformer", "lstm"}) {
    ExperimentConfig c = Config(family, "hidden-" + family);
    c.model.dropout = 0.3;  // reading must switch dropout off
    c.model.max_len = 64;   // so a long piece is read in windows (Transformer)
    c.train.steps = 2;
    c.train.eval_every = 2;
    ASSERT_TRUE(Train(c, train_, val_, Quiet()).ok()) << family;
    auto reader = HiddenStateReader::Open(c.out + "/checkpoints/latest.pt");
    ASSERT_TRUE(reader.ok()) << reader.status().message();
    auto enc = Tokenizer().Encode(MakeSyntheticTune(3, 0).score);
    ASSERT_TRUE(enc.ok());
    std::vector<int32_t> tokens(enc->tokens.begin(), enc->tokens.begin() + 150);
    auto a = (*reader)->PerToken(tokens);
    ASSERT_TRUE(a.ok()) << a.status().message();
    ASSERT_EQ(a->size(), tokens.size()) << family;
    for (const auto& row : *a) ASSERT_EQ(row.size(), static_cast<size_t>(c.model.d_model));
    auto b = (*reader)->PerToken(tokens);
    EXPECT_EQ(*a, *b) << family << ": two reads differ (dropout left on?)";
    // Causal: changing the last token leaves every earlier row as it was, and changes the last one.
    std::vector<int32_t> changed = tokens;
    changed.back() = changed.back() == 5 ? 6 : 5;
    auto d = (*reader)->PerToken(changed);
    ASSERT_TRUE(d.ok());
    for (size_t t = 0; t + 1 < tokens.size(); ++t) {
      for (int64_t k = 0; k < c.model.d_model; ++k) ASSERT_NEAR((*a)[t][k], (*d)[t][k], 1e-5) << family << " token " << t;
    }
    EXPECT_NE((*a).back(), (*d).back()) << family;
    // The Transformer reads 64-token windows afresh: token 64 sees only itself, as at the start of a sequence.
    if (family == "transformer") {
      std::vector<int32_t> tail(tokens.begin() + 64, tokens.end());
      auto t2 = (*reader)->PerToken(tail);
      ASSERT_TRUE(t2.ok());
      for (int64_t k = 0; k < c.model.d_model; ++k) EXPECT_NEAR((*a)[64][k], (*t2)[0][k], 1e-5);
    }
    auto bad = (*reader)->PerToken({1, 2, 99999});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("token 2: id 99999 is outside the model's vocabulary"), std::string::npos)
        << bad.status().message();
  }
}

TEST_F(TrainingTest, StateDictExportLoadsInPythonTorch) {
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    GTEST_SKIP() << "Debian's python3-torch is not installed (scripts/install-deps.sh installs it)";
  }
  ExperimentConfig c = Config("lstm", "export");
  c.train.steps = 2;
  c.train.eval_every = 2;
  ASSERT_TRUE(Train(c, train_, val_, Quiet()).ok());
  auto ckpt = LoadCheckpoint(c.out + "/checkpoints/latest.pt");
  ASSERT_TRUE(ckpt.ok());
  const std::string out = c.out + "/python.txt";
  const std::string cmd = "/usr/bin/python3 -c \"import torch; d = torch.load('" + c.out +
                          "/model_state.pt'); print(len(d), '%.6f' % d['embedding.weight'].double().sum().item(), "
                          "tuple(d['combine.weight'].shape))\" > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  const auto params = ckpt->model->named_parameters();
  char expected[160];
  std::snprintf(expected, sizeof expected, "%zu %.6f (%lld, %lld)", params.size() + ckpt->model->named_buffers().size(),
                params["embedding.weight"].to(torch::kFloat64).sum().item<double>(),
                (long long)params["combine.weight"].size(0), (long long)params["combine.weight"].size(1));
  EXPECT_EQ(line, expected);
}

TEST_F(TrainingTest, DamagedOrForeignCheckpointsAreNamedErrors) {
  fs::create_directories(dir_);
  const std::string garbage = (dir_ / "garbage.pt").string();
  std::ofstream(garbage) << "this is not a checkpoint";
  auto r = InspectCheckpoint(garbage);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(garbage), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("not a cadenza checkpoint"), std::string::npos) << r.status().message();
  auto missing = GenerateFromCheckpoint((dir_ / "none.pt").string(), GenerateOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("none.pt"), std::string::npos);
}

}  // namespace
}  // namespace cadenza
