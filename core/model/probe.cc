// Efficiency probes (see probe.h): timings by steady_clock medians, memory by counting live CPU tensor bytes.
#include "core/model/probe.h"

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>

#include "core/model/checkpoint.h"
#include "core/model/sequence_model.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

// Wraps LibTorch's CPU allocator and counts live bytes and their peak: the memory a forward or a step needs,
// independent of how malloc keeps or returns pages (RSS would mostly measure that).
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(size_t n) const override {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    const int64_t live = live_.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t peak = peak_.load();
    while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
    }
    auto* ctx = new Block{std::move(inner), static_cast<int64_t>(n), this};
    return c10::DataPtr(data, ctx, &Release, c10::Device(c10::DeviceType::CPU));
  }

  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }
  void ResetPeak() const { peak_.store(live_.load()); }

 private:
  struct Block {
    c10::DataPtr inner;  // frees the memory with the base allocator's deleter when the block is deleted
    int64_t bytes;
    const CountingAllocator* owner;
  };
  static void Release(void* ctx) {
    auto* block = static_cast<Block*>(ctx);
    block->owner->live_.fetch_sub(block->bytes);
    delete block;
  }

  c10::Allocator* base_;
  mutable std::atomic<int64_t> live_{0};
  mutable std::atomic<int64_t> peak_{0};
};

// Installed once for the process; tensors allocated before keep their own deleters.
const CountingAllocator& Counter() {
  static CountingAllocator* counter = [] {
    auto* c = new CountingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(c, /*priority=*/200);
    return c;
  }();
  return *counter;
}

double Mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

struct Stats {
  double median = 0, min = 0, max = 0;
};
Stats Summarize(std::vector<double> ms) {
  Stats s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  s.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  s.min = ms.front();
  s.max = ms.back();
  return s;
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

StatusOr<SequenceModel> LoadForProbe(const std::string& source) {
  if (EndsWith(source, ".yaml") || EndsWith(source, ".yml")) {
    auto config = LoadModelConfig(source);
    if (!config.ok()) return config.status();
    Status s = ValidateModelConfig(*config, source);
    if (!s.ok()) return s;
    torch::manual_seed(0);
    return MakeModel(*config);
  }
  if (EndsWith(source, ".pt")) {
    auto loaded = LoadCheckpoint(source);
    if (!loaded.ok()) return loaded.status();
    return loaded->model;
  }
  return InvalidArgument(source + ": expected a checkpoint (.pt) or a model config (.yaml)");
}

}  // namespace

StatusOr<std::vector<ProbeRow>> ProbeModel(const std::string& source, const ProbeOptions& options,
                                           const ProbeProgress& progress) {
  if (options.lengths.empty()) return InvalidArgument("lengths: empty; give at least one context length");
  for (int64_t l : options.lengths) {
    if (l < 1) return InvalidArgument("lengths: " + std::to_string(l) + " is not a positive token count");
  }
  if (options.batch < 1) return InvalidArgument("batch: must be at least 1");
  if (options.repeats < 1) return InvalidArgument("repeats: must be at least 1");
  if (options.warmup < 0) return InvalidArgument("warmup: must not be negative");
  auto model_or = LoadForProbe(source);
  if (!model_or.ok()) return model_or.status();
  SequenceModel model = *model_or;
  model->eval();
  torch::NoGradGuard no_grad;
  const CountingAllocator& counter = Counter();
  const int64_t vocab = Vocabulary::Get().size();
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int64_t> draw(0, vocab - 1);

  std::vector<ProbeRow> rows;
  for (size_t li = 0; li < options.lengths.size(); ++li) {
    const int64_t length = options.lengths[li];
    ProbeRow row;
    row.model = source;
    row.family = model->config().family;
    row.parameters = model->NumParameters();
    row.length = length;
    row.batch = options.batch;
    const int64_t steps_needed = length + options.repeats;
    if (length > model->MaxContext()) {
      row.note = "longer than the model's context (" + std::to_string(model->MaxContext()) + " tokens)";
    } else {
      std::vector<int64_t> ids(static_cast<size_t>(options.batch * steps_needed));
      for (int64_t& id : ids) id = draw(rng);
      torch::Tensor all = torch::from_blob(ids.data(), {options.batch, steps_needed}, torch::kInt64).clone();
      torch::Tensor input = all.narrow(1, 0, length).contiguous();

      // Full forward over the whole context.
      std::vector<double> forward_ms;
      for (int r = 0; r < options.warmup + options.repeats; ++r) {
        const int64_t live_before = counter.live();
        counter.ResetPeak();
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor logits = model->forward(input);
        const double ms = MsSince(t0);
        if (r >= options.warmup) forward_ms.push_back(ms);
        row.forward_peak_mb = std::max(row.forward_peak_mb, Mib(counter.peak() - live_before));
      }
      const Stats f = Summarize(forward_ms);
      row.forward_ms = f.median;
      row.forward_ms_min = f.min;
      row.forward_ms_max = f.max;
      row.forward_tokens_per_s = f.median > 0 ? 1000.0 * options.batch * length / f.median : 0;
      row.forward_measured = true;

      // Training memory: one forward + backward of the same tokens in train mode, gradients enabled.
      const auto params = model->parameters();
      const bool trainable = std::any_of(params.begin(), params.end(), [](const torch::Tensor& p) { return p.requires_grad(); });
      if (length >= 2 && trainable) {
        torch::AutoGradMode grad_on(true);
        model->train();
        const int64_t live_before = counter.live();
        counter.ResetPeak();
        {
          torch::Tensor logits = model->forward(input);
          torch::Tensor loss = torch::nn::functional::cross_entropy(
              logits.narrow(1, 0, length - 1).reshape({-1, logits.size(-1)}), input.narrow(1, 1, length - 1).reshape({-1}));
          loss.backward();
        }
        row.train_peak_mb = Mib(counter.peak() - live_before);
        for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();  // frees the gradients
        model->eval();
      }

      // Generation: fill the state with `length` tokens (the last `warmup` of them are the warm-up steps),
      // then time `repeats` single steps; the context grows from length to length + repeats - 1.
      if (steps_needed > model->MaxContext()) {
        row.note = "no step timing: length + repeats exceeds the model's context (" +
                   std::to_string(model->MaxContext()) + " tokens)";
      } else {
        const int64_t live_before = counter.live();
        auto state = model->NewState(options.batch, steps_needed);
        for (int64_t t = 0; t < length; ++t) model->Step(all.select(1, t).contiguous(), *state);
        row.state_mb = Mib(counter.live() - live_before);
        std::vector<double> step_ms;
        for (int r = 0; r < options.repeats; ++r) {
          torch::Tensor token = all.select(1, length + r).contiguous();
          counter.ResetPeak();
          const auto t0 = std::chrono::steady_clock::now();
          torch::Tensor logits = model->Step(token, *state);
          step_ms.push_back(MsSince(t0));
          row.step_peak_mb = std::max(row.step_peak_mb, Mib(counter.peak() - live_before));
        }
        const Stats s = Summarize(step_ms);
        row.step_ms = s.median;
        row.step_ms_min = s.min;
        row.step_ms_max = s.max;
        row.step_measured = true;
      }
    }
    rows.push_back(row);
    if (progress) progress(row, li + 1, options.lengths.size());
  }
  return rows;
}

std::string ProbeCsv(const std::vector<ProbeRow>& rows) {
  std::string out =
      "model,family,parameters,length,batch,forward_ms,forward_ms_min,forward_ms_max,forward_tokens_per_s,step_ms,"
      "step_ms_min,step_ms_max,forward_peak_mb,state_mb,step_peak_mb,train_peak_mb,note\n";
  auto quote = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  char buf[512];
  for (const ProbeRow& r : rows) {
    std::snprintf(buf, sizeof buf, ",%s,%lld,%lld,%lld,%.4f,%.4f,%.4f,%.1f,%.4f,%.4f,%.4f,%.3f,%.3f,%.3f,%.3f,",
                  r.family.c_str(), static_cast<long long>(r.parameters), static_cast<long long>(r.length),
                  static_cast<long long>(r.batch), r.forward_ms, r.forward_ms_min, r.forward_ms_max,
                  r.forward_tokens_per_s, r.step_ms, r.step_ms_min, r.step_ms_max, r.forward_peak_mb, r.state_mb,
                  r.step_peak_mb, r.train_peak_mb);
    out += quote(r.model) + buf + quote(r.note) + "\n";
  }
  return out;
}

}  // namespace cadenza
