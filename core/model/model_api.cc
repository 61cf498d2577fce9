// Torch-free entry points, implemented on the model, checkpoint and generator internals.
#include "core/model/model_api.h"

#include <algorithm>
#include <cmath>

#include "core/model/checkpoint.h"
#include "core/model/generator.h"
#include "core/model/mixed_precision.h"
#include "core/model/precision.h"
#include "core/model/sequence_model.h"
#include "core/threads.h"
#include "core/vocabulary.h"

namespace cadenza {

StatusOr<int64_t> CountParameters(const ModelConfig& config) {
  Status s = ValidateModelConfig(config, "model");
  if (!s.ok()) return s;
  return MakeModel(config)->NumParameters();
}

void SetTorchThreads(int threads) {
  torch::set_num_threads(std::min(kMaxThreads, threads > 0 ? threads : DefaultThreads()));
}

namespace {
CheckpointInfo InfoOf(const LoadedCheckpoint& c) {
  CheckpointInfo info;
  info.config = c.config;
  info.step = c.progress.step;
  info.parameters = c.model->NumParameters();
  info.best_val_nll = c.progress.best_val_nll;
  return info;
}

// Inference runs in the precision the checkpoint was trained in (its weights are fp32 either way); bf16 is refused
// where this CPU cannot run it, naming the checkpoint.
Status CheckInferencePrecision(const std::string& path, const LoadedCheckpoint& c) {
  return CheckPrecision(c.config.train.precision, CurrentCpuFeatures(), path + ": train.precision");
}
bool Bf16(const CheckpointInfo& info) { return info.config.train.precision == "bf16"; }
}  // namespace

StatusOr<CheckpointInfo> InspectCheckpoint(const std::string& path) {
  auto loaded = LoadCheckpoint(path);
  if (!loaded.ok()) return loaded.status();
  return InfoOf(*loaded);
}

StatusOr<std::vector<GeneratedSample>> GenerateFromCheckpoint(const std::string& path, const GenerateOptions& options,
                                                              CheckpointInfo* info) {
  auto loaded = LoadCheckpoint(path);
  if (!loaded.ok()) return loaded.status();
  if (Status p = CheckInferencePrecision(path, *loaded); !p.ok()) return p;
  if (info) *info = InfoOf(*loaded);
  const Bf16ComputeScope precision(loaded->config.train.precision == "bf16");
  return Generate(*loaded->model, options);
}

struct CheckpointScorer::Impl {
  SequenceModel model;
};

CheckpointScorer::~CheckpointScorer() = default;

StatusOr<std::unique_ptr<CheckpointScorer>> CheckpointScorer::Open(const std::string& checkpoint) {
  auto loaded = LoadCheckpoint(checkpoint);
  if (!loaded.ok()) return loaded.status();
  if (Status p = CheckInferencePrecision(checkpoint, *loaded); !p.ok()) return p;
  std::unique_ptr<CheckpointScorer> scorer(new CheckpointScorer());
  scorer->info_ = InfoOf(*loaded);
  scorer->impl_ = std::make_unique<Impl>();
  scorer->impl_->model = loaded->model;
  scorer->impl_->model->eval();
  return scorer;
}

StatusOr<ScoreResult> CheckpointScorer::Score(const WindowSource& windows, int64_t batch_size) const {
  SequenceModelImpl& model = *impl_->model;
  const int64_t length = windows.length();
  if (length < 2) return InvalidArgument("score: windows of " + std::to_string(length) + " tokens hold no target");
  if (length - 1 > model.MaxContext()) {
    return InvalidArgument("score: windows of " + std::to_string(length - 1) + " input tokens exceed the model's context of " +
                           std::to_string(model.MaxContext()));
  }
  batch_size = std::max<int64_t>(1, batch_size);
  torch::NoGradGuard no_grad;
  const Bf16ComputeScope precision(Bf16(info_));
  model.eval();
  const int32_t pad = Vocabulary::Get().Pad(), bar = Vocabulary::Get().Bar();
  ScoreResult r;
  r.windows = windows.WindowsPerEpoch();
  for (int64_t first = 0; first < r.windows; first += batch_size) {
    const int64_t count = std::min(batch_size, r.windows - first);
    auto batch = torch::empty({count, length}, torch::kInt32);
    windows.Fill(0, first, count, batch.data_ptr<int32_t>());
    batch = batch.to(torch::kInt64);
    auto inputs = batch.narrow(1, 0, length - 1), targets = batch.narrow(1, 1, length - 1);
    auto logits = model.forward(inputs);
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(pad).reduction(torch::kSum));
    r.nll += loss.item<double>();
    r.tokens += (targets != pad).sum().item<int64_t>();
    r.bars += (targets == bar).sum().item<int64_t>();
  }
  r.nll_per_token = r.tokens ? r.nll / double(r.tokens) : 0;
  r.perplexity = std::exp(r.nll_per_token);
  r.nll_per_bar = r.bars ? r.nll / double(r.bars) : 0;
  return r;
}

struct HiddenStateReader::Impl {
  SequenceModel model;
};

HiddenStateReader::~HiddenStateReader() = default;

StatusOr<std::unique_ptr<HiddenStateReader>> HiddenStateReader::Open(const std::string& checkpoint) {
  auto loaded = LoadCheckpoint(checkpoint);
  if (!loaded.ok()) return loaded.status();
  if (Status p = CheckInferencePrecision(checkpoint, *loaded); !p.ok()) return p;
  std::unique_ptr<HiddenStateReader> reader(new HiddenStateReader());
  reader->info_ = InfoOf(*loaded);
  reader->impl_ = std::make_unique<Impl>();
  reader->impl_->model = loaded->model;
  reader->impl_->model->eval();
  return reader;
}

StatusOr<std::vector<std::vector<float>>> HiddenStateReader::PerToken(const std::vector<int32_t>& tokens) const {
  SequenceModelImpl& model = *impl_->model;
  const int64_t vocab = model.config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      return InvalidArgument("token " + std::to_string(i) + ": id " + std::to_string(tokens[i]) +
                             " is outside the model's vocabulary of " + std::to_string(vocab));
    }
  }
  torch::NoGradGuard no_grad;
  const Bf16ComputeScope precision(Bf16(info_));
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t window = std::min<int64_t>(model.MaxContext(), std::max<int64_t>(n, 1));
  std::vector<std::vector<float>> rows;
  rows.reserve(tokens.size());
  for (int64_t start = 0; start < n; start += window) {
    const int64_t len = std::min(window, n - start);
    std::vector<int64_t> ids(tokens.begin() + start, tokens.begin() + start + len);
    torch::Tensor input = torch::from_blob(ids.data(), {1, len}, torch::kInt64).clone();
    torch::Tensor hidden = model.Hidden(input).squeeze(0).contiguous().to(torch::kFloat32);  // [len, D]
    const int64_t d = hidden.size(1);
    const float* p = hidden.data_ptr<float>();
    for (int64_t t = 0; t < len; ++t) rows.emplace_back(p + t * d, p + (t + 1) * d);
  }
  return rows;
}

}  // namespace cadenza
