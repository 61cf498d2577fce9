// Training loop for both families; deterministic by seed, resumable bit-exactly from its checkpoints.
#include "core/model/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/file_util.h"
#include "core/metrics_log.h"
#include "core/model/checkpoint.h"
#include "core/model/sequence_model.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace fs = std::filesystem;

double LearningRateAt(const TrainConfig& cfg, int64_t step) {
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) return cfg.lr * double(step + 1) / double(cfg.warmup_steps);
  const double span = std::max<int64_t>(1, cfg.steps - cfg.warmup_steps);
  const double progress = std::min(1.0, double(step - cfg.warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine);
}

namespace {

torch::Tensor LoadBatch(const WindowSource& source, int64_t epoch, int64_t first, int64_t count) {
  auto batch = torch::empty({count, source.length()}, torch::kInt32);
  source.Fill(epoch, first, count, batch.data_ptr<int32_t>());
  return batch.to(torch::kInt64);
}

EvalResult Evaluate(SequenceModelImpl& model, const WindowSource& val, int64_t max_windows, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model.eval();
  EvalResult r;
  double nll = 0;
  const int64_t n = max_windows > 0 ? std::min(max_windows, val.WindowsPerEpoch()) : val.WindowsPerEpoch();
  for (int64_t first = 0; first < n; first += batch_size) {
    const int64_t count = std::min(batch_size, n - first);
    auto batch = LoadBatch(val, 0, first, count);
    auto inputs = batch.narrow(1, 0, batch.size(1) - 1), targets = batch.narrow(1, 1, batch.size(1) - 1);
    auto logits = model.forward(inputs);
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(Vocabulary::Get().Pad()).reduction(torch::kSum));
    nll += loss.item<double>();
    r.tokens += (targets != Vocabulary::Get().Pad()).sum().item<int64_t>();
    r.bars += (targets == Vocabulary::Get().Bar()).sum().item<int64_t>();
  }
  model.train();
  r.nll_per_token = r.tokens ? nll / r.tokens : 0;
  r.perplexity = std::exp(r.nll_per_token);
  r.nll_per_bar = r.bars ? nll / r.bars : 0;
  return r;
}

std::string Duration(double seconds) {
  char buf[32];
  const int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  return buf;
}

// Decay applies to weight matrices only, not to biases, LayerNorm gains or the (tied) embedding.
std::vector<torch::optim::OptimizerParamGroup> ParamGroups(SequenceModelImpl& model, const TrainConfig& cfg) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : model.named_parameters()) {
    const bool matrix = item.value().dim() >= 2 && item.key().find("embedding") == std::string::npos;
    (matrix ? decay : no_decay).push_back(item.value());
  }
  auto opts = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(cfg.lr).betas({cfg.beta1, cfg.beta2}).weight_decay(wd).eps(1e-8));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, opts(cfg.weight_decay));
  groups.emplace_back(no_decay, opts(0.0));
  return groups;
}

}  // namespace

StatusOr<TrainSummary> Train(const ExperimentConfig& config, const WindowSource& train, const WindowSource& val,
                             const TrainOptions& options) {
  const TrainConfig& cfg = config.train;
  if (train.WindowsPerEpoch() < cfg.batch_size) {
    return FailedPrecondition(config.dataset + ": only " + std::to_string(train.WindowsPerEpoch()) +
                              " training windows for a batch of " + std::to_string(cfg.batch_size));
  }
  const fs::path out(config.out), ckpt_dir = out / "checkpoints";
  const std::string latest = (ckpt_dir / "latest.pt").string(), best = (ckpt_dir / "best.pt").string();
  std::error_code ec;
  fs::create_directories(ckpt_dir, ec);
  if (ec) return IoError(ckpt_dir.string() + ": cannot create: " + ec.message());
  if (!options.resume && fs::exists(latest)) {
    return FailedPrecondition(config.out + " already holds a training run (" + latest +
                              "): pass --resume to continue it, or choose another `out`");
  }
  if (options.resume && !fs::exists(latest)) return NotFound(latest + ": nothing to resume");
  Status s = WriteFileAtomic((out / "config.yaml").string(), config.ToYaml());
  if (!s.ok()) return s;

  torch::set_num_threads(cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency()));
  torch::manual_seed(cfg.seed);
  SequenceModel model = MakeModel(config.model);
  model->train();
  torch::optim::AdamW optimizer(ParamGroups(*model, cfg));
  TrainingProgress progress;
  if (options.resume) {
    auto loaded = LoadCheckpoint(latest);
    if (!loaded.ok()) return loaded.status();
    if (loaded->config.ToYaml() != config.ToYaml()) {
      return FailedPrecondition(latest + ": was trained with a different config; resume with the same experiment file");
    }
    progress = loaded->progress;
    s = RestoreTrainingState(latest, *model, optimizer);
    if (!s.ok()) return s;
  }
  auto log = MetricsLog::Open(out.string());
  if (!log.ok()) return log.status();

  TrainSummary summary;
  summary.parameters = model->NumParameters();
  summary.checkpoint = latest;
  const int64_t per_epoch = train.WindowsPerEpoch();
  const int64_t tokens_per_step = cfg.batch_size * (train.length() - 1);
  const bool tty = ::isatty(STDERR_FILENO);
  if (options.progress) {
    std::fprintf(stderr, "train %s: %s, %lld parameters, %lld windows/epoch, %s step %lld of %lld\n", config.name.c_str(),
                 config.model.family.c_str(), (long long)summary.parameters, (long long)per_epoch,
                 options.resume ? "resuming at" : "starting at", (long long)progress.step, (long long)cfg.steps);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto last_print = t0;
  int64_t steps_here = 0;
  double loss_value = 0;
  auto save = [&]() { return SaveCheckpoint(latest, config, *model, optimizer, progress); };

  while (progress.step < cfg.steps) {
    if (progress.cursor + cfg.batch_size > per_epoch) {  // the tail of an epoch that does not fill a batch is skipped
      ++progress.epoch;
      progress.cursor = 0;
    }
    const double lr = LearningRateAt(cfg, progress.step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    auto batch = LoadBatch(train, progress.epoch, progress.cursor, cfg.batch_size);
    progress.cursor += cfg.batch_size;
    auto inputs = batch.narrow(1, 0, batch.size(1) - 1), targets = batch.narrow(1, 1, batch.size(1) - 1);
    optimizer.zero_grad();
    auto logits = model->forward(inputs);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                                     torch::nn::functional::CrossEntropyFuncOptions().ignore_index(Vocabulary::Get().Pad()));
    loss.backward();
    double grad_norm = 0;
    if (cfg.grad_clip > 0) grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), cfg.grad_clip);
    optimizer.step();
    ++progress.step;
    ++steps_here;
    loss_value = loss.item<double>();
    summary.last_train_loss = loss_value;
    if (!std::isfinite(loss_value)) {
      return Status(StatusCode::kInternal, "training diverged at step " + std::to_string(progress.step) +
                                               " (loss is " + std::to_string(loss_value) + "): lower train.lr");
    }
    (void)(*log)->Scalar("train/loss", progress.step, loss_value);
    (void)(*log)->Scalar("train/lr", progress.step, lr);
    if (cfg.grad_clip > 0) (void)(*log)->Scalar("train/grad_norm", progress.step, grad_norm);

    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    summary.tokens_per_second = steps_here * tokens_per_step / std::max(1e-9, elapsed);
    if (options.progress && (std::chrono::duration<double>(now - last_print).count() > (tty ? 0.5 : 15.0) || progress.step == cfg.steps)) {
      last_print = now;
      const double eta = (cfg.steps - progress.step) * elapsed / steps_here;
      std::fprintf(stderr, "%s  step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   %s", tty ? "\r" : "",
                   (long long)progress.step, (long long)cfg.steps, loss_value, lr, summary.tokens_per_second,
                   Duration(eta).c_str(), tty ? "" : "\n");
    }

    const bool stop_now = (options.stop_after_steps > 0 && steps_here >= options.stop_after_steps) ||
                          (options.stop_requested && options.stop_requested->load());
    if (progress.step % cfg.eval_every == 0 || progress.step == cfg.steps) {
      EvalResult r = Evaluate(*model, val, cfg.eval_windows, cfg.batch_size);
      summary.last_val_nll = r.nll_per_token;
      (void)(*log)->Scalar("val/nll_per_token", progress.step, r.nll_per_token);
      (void)(*log)->Scalar("val/perplexity", progress.step, r.perplexity);
      (void)(*log)->Scalar("val/nll_per_bar", progress.step, r.nll_per_bar);
      (void)(*log)->Scalar("train/tokens_per_second", progress.step, summary.tokens_per_second);
      const bool improved = r.nll_per_token < progress.best_val_nll;
      if (improved) {
        progress.best_val_nll = r.nll_per_token;
        progress.evals_without_improvement = 0;
      } else {
        ++progress.evals_without_improvement;
      }
      if (options.progress) {
        std::fprintf(stderr, "%s  step %lld: val NLL/token %.4f  perplexity %.2f  NLL/bar %.2f%s\n", tty ? "\n" : "",
                     (long long)progress.step, r.nll_per_token, r.perplexity, r.nll_per_bar, improved ? "  (best)" : "");
      }
      if ((s = save()); !s.ok()) return s;
      if (improved) {
        fs::copy_file(latest, best, fs::copy_options::overwrite_existing, ec);
        if (ec) return IoError(best + ": cannot copy the best checkpoint: " + ec.message());
        summary.best_val_perplexity = r.perplexity;
        summary.best_val_nll_per_bar = r.nll_per_bar;
      }
      if (cfg.early_stopping_patience > 0 && progress.evals_without_improvement >= cfg.early_stopping_patience) {
        summary.early_stopped = true;
        if (options.progress) std::fprintf(stderr, "early stop: %d validations without improvement\n", cfg.early_stopping_patience);
        break;
      }
    } else if (stop_now) {
      if ((s = save()); !s.ok()) return s;
    }
    if (stop_now && progress.step < cfg.steps) {
      summary.interrupted = true;
      break;
    }
  }
  (void)(*log)->Flush();
  summary.steps = progress.step;
  summary.best_val_nll = progress.best_val_nll;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!summary.interrupted) {
    s = ExportStateDict((out / "model_state.pt").string(), *model);
    if (!s.ok()) return s;
  }
  return summary;
}

}  // namespace cadenza
