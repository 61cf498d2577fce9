// Torch-free entry points, implemented on the model, checkpoint and generator internals.
#include "core/model/model_api.h"

#include <thread>

#include "core/model/checkpoint.h"
#include "core/model/generator.h"
#include "core/model/sequence_model.h"

namespace cadenza {

StatusOr<int64_t> CountParameters(const ModelConfig& config) {
  Status s = ValidateModelConfig(config, "model");
  if (!s.ok()) return s;
  return MakeModel(config)->NumParameters();
}

void SetTorchThreads(int threads) {
  torch::set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
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
  if (info) *info = InfoOf(*loaded);
  return Generate(*loaded->model, options);
}

struct HiddenStateReader::Impl {
  SequenceModel model;
};

HiddenStateReader::~HiddenStateReader() = default;

StatusOr<std::unique_ptr<HiddenStateReader>> HiddenStateReader::Open(const std::string& checkpoint) {
  auto loaded = LoadCheckpoint(checkpoint);
  if (!loaded.ok()) return loaded.status();
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
