// Training loop for both families; deterministic by seed, resumable bit-exactly from its checkpoints.
#include "core/model/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>

#include "core/build_info.h"
#include "core/eval/evaluate.h"
#include "core/file_util.h"
#include "core/metrics_log.h"
#include "core/model/checkpoint.h"
#include "core/model/cpu_matmul.h"
#include "core/model/generator.h"
#include "core/model/gradient_sync.h"
#include "core/model/mixed_precision.h"
#include "core/model/model_api.h"
#include "core/model/precision.h"
#include "core/model/sequence_model.h"
#include "core/run_layout.h"
#include "core/threads.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace fs = std::filesystem;

int SyncRank(const GradientSync* sync) { return sync ? sync->rank() : 0; }
int SyncWorld(const GradientSync* sync) { return sync ? sync->world() : 1; }

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

// With `sync`, each rank evaluates its share (max_windows / world of its windows) and the sums are reduced.
StatusOr<EvalResult> Evaluate(SequenceModelImpl& model, const WindowSource& val, int64_t max_windows,
                              int64_t batch_size, GradientSync* sync) {
  torch::NoGradGuard no_grad;
  model.eval();
  EvalResult r;
  double nll = 0;
  const int64_t world = sync ? sync->world() : 1;
  const int64_t n = max_windows > 0 ? std::min((max_windows + world - 1) / world, val.WindowsPerEpoch())
                                    : val.WindowsPerEpoch();
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
  if (sync) {
    double sums[3] = {nll, double(r.tokens), double(r.bars)};
    Status s = sync->SumAcrossRanks(sums, 3);
    if (!s.ok()) return s;
    nll = sums[0];
    r.tokens = int64_t(sums[1]);
    r.bars = int64_t(sums[2]);
  }
  r.nll_per_token = r.tokens ? nll / r.tokens : 0;
  r.perplexity = std::exp(r.nll_per_token);
  r.nll_per_bar = r.bars ? nll / r.bars : 0;
  return r;
}

// Steady-clock microseconds, for the timeline's phases.
int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What the model generates at this point of training, measured as the study measures samples: train.eval_samples
// pieces of train.eval_sample_bars bars with the generate: settings, seeded by train.seed and the step, from a
// generator of their own (training's random stream is untouched, so resume stays exact). Each value is the mean
// over the pieces where it is defined; sample/pieces counts the pieces measured.
// Data-parallel: every rank samples its share (rank r: pieces r, r + world, ...) and the sums are added over
// ranks, so no rank waits out another's sampling at the next reduction (rank 0 sampling alone under load ran past
// the collective timeout and aborted a study run with exit 75). Rank 0's share keeps the single-process seed.
StatusOr<std::map<std::string, double>> SampleStructure(SequenceModelImpl& model, const ExperimentConfig& config,
                                                        int64_t step, GradientSync* sync) {
  const int rank = sync ? sync->rank() : 0, world = sync ? sync->world() : 1;
  const int64_t begin_us = NowMicros();
  GenerateOptions g;
  g.count = (config.train.eval_samples - rank + world - 1) / world;
  g.bars = config.train.eval_sample_bars;
  g.max_new_tokens = config.generate.max_tokens;
  g.temperature = config.generate.temperature;
  g.top_k = config.generate.top_k;
  g.top_p = config.generate.top_p;
  g.seed = config.train.seed * 1000003ULL + uint64_t(step) + 7919ULL * uint64_t(rank);
  // sums[0..3] of the four metrics, counts[4..7] of pieces where each is defined, [8] pieces measured.
  double totals[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  if (g.count > 0) {
    auto samples = Generate(model, g);
    model.train();
    if (samples.ok()) {
      for (const GeneratedSample& s : *samples) {
        auto piece = PieceFromTokens(s.tokens);
        if (!piece.ok()) continue;
        auto m = EvaluatePiece(*piece, EvalOptions());
        if (!m.ok()) continue;  // e.g. a sample without notes
        totals[8] += 1;
        const double values[4] = {m->structure.structureness, m->structure.repetition, m->melody.avg_pitch_deviation,
                                  m->rhythm.syncopation};
        for (int k = 0; k < 4; ++k) {
          if (!std::isfinite(values[k])) continue;
          totals[k] += values[k];
          totals[4 + k] += 1;
        }
      }
    }
  }
  if (sync) {
    sync->RecordPhase("validation samples", begin_us, NowMicros());
    if (Status s = sync->SumAcrossRanks(totals, 9); !s.ok()) return s;
  }
  const char* names[] = {"sample/structureness", "sample/repetition", "sample/avg_pitch_deviation", "sample/syncopation"};
  std::map<std::string, double> out;
  out["sample/pieces"] = totals[8];
  for (int k = 0; k < 4; ++k) {
    if (totals[4 + k] > 0) out[names[k]] = totals[k] / totals[4 + k];
  }
  return out;
}

// Moves what a run without a checkpoint leaves behind (metrics, TensorBoard events, best.pt, model_state.pt) into
// <out>/previous-<UTC time>/, keeping their relative paths. Returns that folder, or "" when there was nothing.
StatusOr<std::string> MoveAsideEarlierRun(const fs::path& out) {
  std::vector<fs::path> leftovers;
  std::error_code ec;
  for (const std::string& rel : {run_layout::MetricsCsv(""), run_layout::MetricsJsonl(""), run_layout::TensorboardDir(""),
                                 run_layout::BestCheckpoint(""), run_layout::ModelState("")}) {
    if (fs::exists(out / rel, ec)) leftovers.push_back(rel);
  }
  if (leftovers.empty()) return std::string();
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  fs::path aside = out / (std::string("previous-") + stamp);
  for (int i = 2; fs::exists(aside, ec); ++i) aside = out / (std::string("previous-") + stamp + "-" + std::to_string(i));
  for (const fs::path& rel : leftovers) {
    fs::create_directories((aside / rel).parent_path(), ec);
    if (!ec) fs::rename(out / rel, aside / rel, ec);
    if (ec) return IoError((out / rel).string() + ": cannot move aside to " + (aside / rel).string() + ": " + ec.message());
  }
  return aside.string();
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

// Train() without its exception boundary.
StatusOr<TrainSummary> TrainUnguarded(const ExperimentConfig& config, const WindowSource& train, const WindowSource& val,
                                      const TrainOptions& options) {
  const TrainConfig& cfg = config.train;
  GradientSync* const sync = options.sync;
  const int64_t world = sync ? sync->world() : 1;
  const bool writer = !sync || sync->rank() == 0;  // only rank 0 writes the run folder
  if (cfg.batch_size % world != 0) {
    return InvalidArgument(config.name + ": train.batch_size " + std::to_string(cfg.batch_size) +
                           " is the global batch and must divide evenly over " + std::to_string(world) + " ranks");
  }
  const int64_t local_batch = cfg.batch_size / world;
  // bf16 only where this CPU runs bf16 GEMMs natively (refused before anything is written); the scope makes this
  // thread's forward passes (training, validation, validation samples) run their GEMMs in bf16 (mixed_precision.h).
  if (Status p = CheckPrecision(cfg.precision, CurrentCpuFeatures(), config.name + ": train.precision"); !p.ok()) return p;
  const Bf16ComputeScope precision_scope(cfg.precision == "bf16");
  // Global windows per epoch; the cursor counts global windows too, so checkpoints resume at any world size.
  const int64_t per_epoch = train.WindowsPerEpoch() * world;
  if (per_epoch < cfg.batch_size) {
    return FailedPrecondition(config.dataset + ": only " + std::to_string(per_epoch) +
                              " training windows for a batch of " + std::to_string(cfg.batch_size));
  }
  const fs::path out(config.out), ckpt_dir = run_layout::CheckpointsDir(config.out);
  const std::string latest = run_layout::LatestCheckpoint(config.out), best = run_layout::BestCheckpoint(config.out);
  std::error_code ec;
  fs::create_directories(ckpt_dir, ec);
  if (ec) return IoError(ckpt_dir.string() + ": cannot create: " + ec.message());
  // One trainer per run folder: rank 0 holds <out>/train.lock for the whole run (the kernel drops it however the
  // process ends), so a second `train --resume` or a stale worker refuses instead of interleaving checkpoints.
  std::optional<FileLock> folder_lock;
  if (writer) {
    auto locked = FileLock::TryAcquire(run_layout::TrainLock(config.out),
                                       "another process is training in " + config.out + "; wait for it or stop it");
    if (!locked.ok()) return locked.status();
    folder_lock.emplace(std::move(locked).value());
  }
  if (writer) {  // temporaries of a writer that was killed mid-write (checkpoints, metrics cut back on resume)
    for (const fs::path& dir : {out, ckpt_dir, fs::path(run_layout::TensorboardDir(config.out))}) {
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(entry.path(), ec);
      }
    }
    ec.clear();
  }
  if (!options.resume && fs::exists(latest)) {
    return FailedPrecondition(config.out + " already holds a training run (" + latest +
                              "): pass --resume to continue it, or choose another `out`");
  }
  if (options.resume && !fs::exists(latest)) return NotFound(latest + ": nothing to resume");
  Status s;
  if (writer && !options.resume) {
    // A run that died before its first checkpoint left metrics (or a best.pt) behind: a fresh run never appends
    // to them; they move to <out>/previous-<time>/ and the run starts clean.
    auto moved = MoveAsideEarlierRun(out);
    if (!moved.ok()) return moved.status();
    if (!moved->empty()) {
      std::fprintf(stderr, "train %s: %s held files of an earlier run without a checkpoint: moved to %s\n",
                   config.name.c_str(), config.out.c_str(), moved->c_str());
    }
  }
  const RunProvenance provenance{GitCommit(), CommandLine(), options.dataset_manifest_sha256};
  if (writer && !(s = WriteFileAtomic(run_layout::ConfigYaml(config.out), RunConfigYaml(config, provenance))).ok()) return s;

  SetTorchThreads(options.threads > 0 ? options.threads : cfg.threads);
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
  if (sync) {
    if (!(s = sync->Attach(*model)).ok()) return s;
    // Dropout masks differ per rank (a world of 2 matches a world of 1 exactly only without dropout).
    if (world > 1) torch::manual_seed(cfg.seed + 7919 * uint64_t(sync->rank() + 1) + uint64_t(progress.step));
  }
  std::unique_ptr<MetricsLog> log_owner;
  if (writer) {
    // Resuming: cut the metrics back to the checkpoint's step, dropping what the stopped process logged after it.
    auto opened = MetricsLog::Open(out.string(), options.resume ? progress.step : -1, options.metrics_flush_bytes);
    if (!opened.ok()) return opened.status();
    log_owner = std::move(*opened);
  }
  MetricsLog* const log = log_owner.get();

  TrainSummary summary;
  summary.parameters = model->NumParameters();
  summary.checkpoint = latest;
  const int64_t tokens_per_step = cfg.batch_size * (train.length() - 1);
  const bool tty = ::isatty(STDERR_FILENO);
  const bool progress_lines = options.progress && writer;
  if (progress_lines) {
    std::fprintf(stderr, "train %s: %s, %lld parameters, %lld windows/epoch, %d threads, matmul on %s, %s step %lld of %lld\n",
                 config.name.c_str(), config.model.family.c_str(), (long long)summary.parameters, (long long)per_epoch,
                 torch::get_num_threads(), CpuMatmulLibrary(), options.resume ? "resuming at" : "starting at",
                 (long long)progress.step, (long long)cfg.steps);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto last_print = t0;
  int64_t steps_here = 0;
  double loss_value = 0;
  // The caller's progress callback (writer only): after each step, and with `checkpoint` after each save.
  auto report = [&](const std::string& checkpoint) {
    if (!writer || !options.on_progress) return;
    TrainStepProgress p;
    p.step = progress.step;
    p.steps = cfg.steps;
    p.loss = loss_value;
    p.tokens_per_second = summary.tokens_per_second;
    p.checkpoint = checkpoint;
    options.on_progress(p);
  };
  auto save = [&]() {
    if (!writer) return Status::Ok();
    // The rows of every step the checkpoint covers reach the disk first: a resume from it then finds them all.
    if (Status synced = log->Sync(); !synced.ok()) return synced;
    Status saved = SaveCheckpoint(latest, config, *model, optimizer, progress);
    if (saved.ok()) report(latest);
    return saved;
  };

  while (progress.step < cfg.steps) {
    if (progress.cursor + cfg.batch_size > per_epoch) {  // the tail of an epoch that does not fill a batch is skipped
      ++progress.epoch;
      progress.cursor = 0;
    }
    const double lr = LearningRateAt(cfg, progress.step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    bool stop_everywhere = false;  // with sync: some rank was asked to stop, so all stop at this step
    if (sync && !(s = sync->BeginStep(progress.step)).ok()) return s;
    const int64_t t_forward = NowMicros();
    // Rank r takes windows [cursor/world, +local_batch) of its share (every world-th window of the epoch's
    // shuffle): the ranks' batches together are exactly the global batch that a world of one would take.
    auto batch = LoadBatch(train, progress.epoch, progress.cursor / world, local_batch);
    progress.cursor += cfg.batch_size;
    auto inputs = batch.narrow(1, 0, batch.size(1) - 1), targets = batch.narrow(1, 1, batch.size(1) - 1);
    optimizer.zero_grad();
    auto logits = model->forward(inputs);
    if (!sync) {
      auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                                       torch::nn::functional::CrossEntropyFuncOptions().ignore_index(Vocabulary::Get().Pad()));
      loss.backward();
      loss_value = loss.item<double>();
    } else {
      // The world-of-one loss is sum(NLL over all ranks' tokens) / (all ranks' tokens): each rank scales its
      // sum by world / global_tokens, so the averaged gradient equals the single-process gradient.
      auto loss_sum = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(Vocabulary::Get().Pad()).reduction(torch::kSum));
      double tokens = double((targets != Vocabulary::Get().Pad()).sum().item<int64_t>());
      if (!(s = sync->SumAcrossRanks(&tokens, 1)).ok()) return s;
      const int64_t t_backward = NowMicros();
      sync->RecordPhase("forward", t_forward, t_backward);
      (loss_sum * (double(world) / std::max(1.0, tokens))).backward();
      const int64_t t_wait = NowMicros();
      sync->RecordPhase("backward", t_backward, t_wait);
      if (!(s = sync->FinishGradients()).ok()) return s;
      const bool stop_here = options.stop_requested && options.stop_requested->load();
      double sums[2] = {loss_sum.item<double>(), stop_here ? 1.0 : 0.0};
      if (!(s = sync->SumAcrossRanks(sums, 2)).ok()) return s;
      sync->RecordPhase("allreduce wait", t_wait, NowMicros());
      loss_value = sums[0] / std::max(1.0, tokens);
      stop_everywhere = sums[1] > 0;
    }
    const int64_t t_optimizer = NowMicros();
    double grad_norm = 0;
    if (cfg.grad_clip > 0) grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), cfg.grad_clip);
    optimizer.step();
    if (sync) sync->RecordPhase("optimizer", t_optimizer, NowMicros());
    ++progress.step;
    ++steps_here;
    progress.last_train_loss = loss_value;
    if (!std::isfinite(loss_value)) {
      return Status(StatusCode::kInternal, "training diverged at step " + std::to_string(progress.step) +
                                               " (loss is " + std::to_string(loss_value) + "): lower train.lr");
    }
    if (log) {
      (void)log->Scalar("train/loss", progress.step, loss_value);
      (void)log->Scalar("train/lr", progress.step, lr);
      if (cfg.grad_clip > 0) (void)log->Scalar("train/grad_norm", progress.step, grad_norm);
    }

    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    summary.tokens_per_second = steps_here * tokens_per_step / std::max(1e-9, elapsed);
    report("");
    if (progress_lines && (std::chrono::duration<double>(now - last_print).count() > (tty ? 0.5 : 15.0) || progress.step == cfg.steps)) {
      last_print = now;
      const double eta = (cfg.steps - progress.step) * elapsed / steps_here;
      std::fprintf(stderr, "%s  step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   %s", tty ? "\r" : "",
                   (long long)progress.step, (long long)cfg.steps, loss_value, lr, summary.tokens_per_second,
                   Duration(eta).c_str(), tty ? "" : "\n");
    }

    const bool stop_now = (options.stop_after_steps > 0 && steps_here >= options.stop_after_steps) ||
                          (sync ? stop_everywhere : options.stop_requested && options.stop_requested->load());
    if (progress.step % cfg.eval_every == 0 || progress.step == cfg.steps) {
      auto evaluated = Evaluate(*model, val, cfg.eval_windows, local_batch, sync);
      if (!evaluated.ok()) return evaluated.status();
      const EvalResult& r = *evaluated;
      summary.last_val_nll = r.nll_per_token;
      if (log) {
        (void)log->Scalar("val/nll_per_token", progress.step, r.nll_per_token);
        (void)log->Scalar("val/perplexity", progress.step, r.perplexity);
        (void)log->Scalar("val/nll_per_bar", progress.step, r.nll_per_bar);
        (void)log->Scalar("train/tokens_per_second", progress.step, summary.tokens_per_second);
      }
      if (cfg.eval_samples > 0) {  // every rank samples its share
        auto sampled = SampleStructure(*model, config, progress.step, sync);
        if (!sampled.ok()) return sampled.status();
        summary.sample_metrics = std::move(*sampled);
        if (log) {
          for (const auto& [name, value] : summary.sample_metrics) (void)log->Scalar(name, progress.step, value);
        }
      }
      const bool improved = r.nll_per_token < progress.best_val_nll;
      if (improved) {
        progress.best_val_nll = r.nll_per_token;
        progress.best_val_nll_per_bar = r.nll_per_bar;
        progress.evals_without_improvement = 0;
      } else {
        ++progress.evals_without_improvement;
      }
      if (progress_lines) {
        std::fprintf(stderr, "%s  step %lld: val NLL/token %.4f  perplexity %.2f  NLL/bar %.2f%s\n", tty ? "\n" : "",
                     (long long)progress.step, r.nll_per_token, r.perplexity, r.nll_per_bar, improved ? "  (best)" : "");
      }
      if ((s = save()); !s.ok()) return s;
      if (improved) {
        if (writer) {  // copied under a temporary name and renamed: a crash never leaves half a best.pt
          const std::string tmp = best + ".tmp-" + std::to_string(::getpid());
          fs::copy_file(latest, tmp, fs::copy_options::overwrite_existing, ec);
          if (ec) return IoError(best + ": cannot copy the best checkpoint: " + ec.message());
          if (!(s = CommitTempFile(tmp, best)).ok()) return s;
        }
      }
      if (cfg.early_stopping_patience > 0 && progress.evals_without_improvement >= cfg.early_stopping_patience) {
        summary.early_stopped = true;
        if (progress_lines) std::fprintf(stderr, "early stop: %d validations without improvement\n", cfg.early_stopping_patience);
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
  if (log) (void)log->Flush();
  summary.steps = progress.step;
  // From the progress, not this process's validations: a resumed run reports its best even if it never beats it.
  summary.best_val_nll = progress.best_val_nll;
  summary.best_val_perplexity = progress.best_val_nll < 1e29 ? std::exp(progress.best_val_nll) : 0;
  summary.best_val_nll_per_bar = progress.best_val_nll_per_bar;
  summary.last_train_loss = progress.last_train_loss;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!summary.interrupted && writer) {
    s = ExportStateDict(run_layout::ModelState(config.out), *model);
    if (!s.ok()) return s;
  }
  return summary;
}

}  // namespace

StatusOr<TrainSummary> Train(const ExperimentConfig& config, const WindowSource& train, const WindowSource& val,
                             const TrainOptions& options) {
  // The boundary of LibTorch's exceptions (c10::Error: a bad index, an allocation that failed, an error raised in a
  // gradient hook): the caller gets a Status with the message, so the worker fails the task and its rank lives on.
  try {
    return TrainUnguarded(config, train, val, options);
  } catch (const c10::Error& e) {
    return InternalError(config.name + ": training failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return InternalError(config.name + ": training failed: " + e.what());
  }
}

}  // namespace cadenza
