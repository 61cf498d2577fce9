// Checkpoint files: a torch archive holding model, optimizer, progress, RNG and the effective config.
#include "core/model/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/file_util.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

constexpr const char* kFormat = "cadenza-checkpoint/1";

}  // namespace

Status SaveCheckpoint(const std::string& path, const ExperimentConfig& config, SequenceModelImpl& model,
                      torch::optim::Optimizer& optimizer, const TrainingProgress& progress) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    torch::serialize::OutputArchive archive;
    archive.write("format", c10::IValue(std::string(kFormat)));
    archive.write("vocab_hash", c10::IValue(Vocabulary::Get().HashHex()));
    archive.write("config_yaml", c10::IValue(config.ToYaml()));
    archive.write("step", c10::IValue(progress.step));
    archive.write("epoch", c10::IValue(progress.epoch));
    archive.write("cursor", c10::IValue(progress.cursor));
    archive.write("best_val_nll", c10::IValue(progress.best_val_nll));
    archive.write("evals_without_improvement", c10::IValue(progress.evals_without_improvement));
    archive.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
    torch::serialize::OutputArchive model_archive, optimizer_archive;
    model.save(model_archive);
    optimizer.save(optimizer_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optimizer_archive);
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    std::filesystem::remove(tmp);
    return IoError(path + ": cannot write checkpoint: " + e.what_without_backtrace());
  }
  return CommitTempFile(tmp, path);  // torch wrote the file by name: fsync, rename, fsync the folder
}

namespace {

StatusOr<torch::serialize::InputArchive> OpenArchive(const std::string& path) {
  if (!std::filesystem::exists(path)) return NotFound(path + ": checkpoint not found");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
    c10::IValue format;
    archive.read("format", format);
    if (!format.isString() || format.toStringRef() != kFormat) {
      return InvalidArgument(path + ": not a cadenza checkpoint (format '" + (format.isString() ? format.toStringRef() : "?") + "')");
    }
    c10::IValue vocab;
    archive.read("vocab_hash", vocab);
    if (vocab.toStringRef() != Vocabulary::Get().HashHex()) {
      return FailedPrecondition(path + ": made with vocabulary " + vocab.toStringRef() + ", this build has " +
                                Vocabulary::Get().HashHex() + " (retrain or use a matching cadenza)");
    }
  } catch (const c10::Error& e) {
    return InvalidArgument(path + ": not a cadenza checkpoint or damaged: " + std::string(e.what_without_backtrace()).substr(0, 200));
  }
  return archive;
}

}  // namespace

StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path) {
  auto archive = OpenArchive(path);
  if (!archive.ok()) return archive.status();
  LoadedCheckpoint out;
  try {
    c10::IValue yaml, step, epoch, cursor, best, bad;
    archive->read("config_yaml", yaml);
    auto config = ParseExperimentConfig(yaml.toStringRef(), path + " (stored config)");
    if (!config.ok()) return config.status();
    out.config = *config;
    archive->read("step", step);
    archive->read("epoch", epoch);
    archive->read("cursor", cursor);
    archive->read("best_val_nll", best);
    archive->read("evals_without_improvement", bad);
    out.progress = {step.toInt(), epoch.toInt(), cursor.toInt(), best.toDouble(), bad.toInt()};
    out.model = MakeModel(out.config.model);
    torch::serialize::InputArchive model_archive;
    archive->read("model", model_archive);
    out.model->load(model_archive);
  } catch (const c10::Error& e) {
    return DataLoss(path + ": checkpoint is incomplete or damaged: " + std::string(e.what_without_backtrace()).substr(0, 200));
  }
  return out;
}

Status RestoreTrainingState(const std::string& path, SequenceModelImpl& model, torch::optim::Optimizer& optimizer) {
  auto archive = OpenArchive(path);
  if (!archive.ok()) return archive.status();
  try {
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive->read("model", model_archive);
    model.load(model_archive);
    archive->read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    torch::Tensor rng;
    archive->read("rng_cpu", rng);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  } catch (const c10::Error& e) {
    return DataLoss(path + ": cannot restore training state: " + std::string(e.what_without_backtrace()).substr(0, 200));
  }
  return Status::Ok();
}

Status ExportStateDict(const std::string& path, SequenceModelImpl& model) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& item : model.named_parameters()) dict.insert(item.key(), item.value().detach().clone());
  for (const auto& item : model.named_buffers()) dict.insert(item.key(), item.value().detach().clone());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return WriteFileAtomic(path, bytes.data(), bytes.size());
}

}  // namespace cadenza
