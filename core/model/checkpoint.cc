// Checkpoint files: a torch archive holding model, optimizer, progress, RNG and the effective config.
#include "core/model/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

// /2: the torch archive is followed by a trailer with its CRC-32C, checked on every load (torch's own zip reader
// skips the CRCs of its records, so flipped bytes would otherwise load). /1 files (no trailer) still load.
constexpr const char* kFormat = "cadenza-checkpoint/2";
constexpr const char* kLegacyFormat = "cadenza-checkpoint/1";
constexpr char kTrailerMagic[8] = {'C', 'D', 'Z', 'C', 'R', 'C', '3', '2'};
constexpr size_t kTrailerSize = 24;  // magic, uint64 archive length, uint32 CRC-32C of the archive, uint32 CRC of these 20

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::string Trailer(uint64_t length, uint32_t crc) {
  std::string t(kTrailerMagic, 8);
  t.append(reinterpret_cast<const char*>(&length), 8);
  t.append(reinterpret_cast<const char*>(&crc), 4);
  const uint32_t self = Crc32c(t.data(), t.size());
  t.append(reinterpret_cast<const char*>(&self), 4);
  return t;
}

// Appends the trailer to the archive torch wrote at `tmp` (streamed: the archive is read back once, from the page
// cache).
Status AppendTrailer(const std::string& tmp) {
  std::error_code ec;
  const uint64_t length = std::filesystem::file_size(tmp, ec);
  if (ec) return IoError(tmp + ": " + ec.message());
  auto crc = Crc32cOfFile(tmp, length);
  if (!crc.ok()) return crc.status();
  std::ofstream out(tmp, std::ios::binary | std::ios::app);
  const std::string trailer = Trailer(length, *crc);
  out.write(trailer.data(), static_cast<std::streamsize>(trailer.size()));
  out.close();
  if (!out) return IoError(tmp + ": cannot append the checksum");
  return Status::Ok();
}

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
    archive.write("best_val_nll_per_bar", c10::IValue(progress.best_val_nll_per_bar));
    archive.write("last_train_loss", c10::IValue(progress.last_train_loss));
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
  if (Status s = AppendTrailer(tmp); !s.ok()) {
    std::filesystem::remove(tmp);
    return s;
  }
  return CommitTempFile(tmp, path);  // torch wrote the file by name: fsync, rename, fsync the folder
}

namespace {

// Reads the whole file into *bytes, checks its trailer's CRC-32C and opens the archive from memory (so what was
// checked is what is loaded). *bytes must outlive the archive.
StatusOr<torch::serialize::InputArchive> OpenArchive(const std::string& path, std::vector<char>* bytes) {
  if (!std::filesystem::exists(path)) return NotFound(path + ": checkpoint not found");
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return IoError(path + ": cannot read the checkpoint");
    bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return IoError(path + ": read error");
  }
  size_t archive_size = bytes->size();
  bool has_trailer = false;
  if (bytes->size() >= kTrailerSize && std::memcmp(bytes->data() + bytes->size() - kTrailerSize, kTrailerMagic, 8) == 0) {
    const char* t = bytes->data() + bytes->size() - kTrailerSize;
    uint64_t length;
    uint32_t crc, self;
    std::memcpy(&length, t + 8, 8);
    std::memcpy(&crc, t + 16, 4);
    std::memcpy(&self, t + 20, 4);
    if (self != Crc32c(t, 20) || length != bytes->size() - kTrailerSize) {
      return DataLoss(path + ": checkpoint is damaged: its checksum trailer does not verify (truncated or overwritten)");
    }
    const uint32_t actual = Crc32c(bytes->data(), length);
    if (actual != crc) {
      return DataLoss(path + ": checkpoint is damaged: CRC-32C of its " + std::to_string(length) + " bytes is " +
                      Hex32(actual) + ", the file records " + Hex32(crc) + " (copy it again or use another checkpoint)");
    }
    archive_size = length;
    has_trailer = true;
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(bytes->data(), archive_size);
    c10::IValue format;
    archive.read("format", format);
    const std::string name = format.isString() ? format.toStringRef() : "?";
    if (name != kFormat && name != kLegacyFormat) {
      return InvalidArgument(path + ": not a cadenza checkpoint (format '" + name + "')");
    }
    if (name == kFormat && !has_trailer) {
      return DataLoss(path + ": checkpoint is damaged: its checksum trailer is missing (truncated?)");
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
  std::vector<char> bytes;
  auto archive = OpenArchive(path, &bytes);
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
    out.progress.step = step.toInt();
    out.progress.epoch = epoch.toInt();
    out.progress.cursor = cursor.toInt();
    out.progress.best_val_nll = best.toDouble();
    out.progress.evals_without_improvement = bad.toInt();
    c10::IValue per_bar, loss;  // absent from checkpoints of earlier versions
    if (archive->try_read("best_val_nll_per_bar", per_bar)) out.progress.best_val_nll_per_bar = per_bar.toDouble();
    if (archive->try_read("last_train_loss", loss)) out.progress.last_train_loss = loss.toDouble();
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
  std::vector<char> bytes;
  auto archive = OpenArchive(path, &bytes);
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
