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

}  // namespace cadenza
