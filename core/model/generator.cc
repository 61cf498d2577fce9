// Batched autoregressive sampling with grammar masks, temperature, top-k and top-p.
#include "core/model/generator.h"

#include <chrono>
#include <limits>

#include "core/grammar.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

// logits [B, V] (already masked) -> next token per row.
torch::Tensor Sample(torch::Tensor logits, const GenerateOptions& o, at::Generator& gen) {
  if (o.temperature <= 0) return logits.argmax(-1);
  logits = logits / o.temperature;
  const int64_t V = logits.size(-1);
  if (o.top_k > 0 && o.top_k < V) {
    auto kth = std::get<0>(logits.topk(o.top_k, -1)).select(-1, o.top_k - 1).unsqueeze(-1);
    logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
  }
  if (o.top_p < 1.0) {
    auto [sorted, index] = logits.sort(-1, /*descending=*/true);
    auto cumulative = torch::softmax(sorted, -1).cumsum(-1);
    auto drop = (cumulative - torch::softmax(sorted, -1)) > o.top_p;  // keep the token that crosses top_p
    sorted = sorted.masked_fill(drop, -std::numeric_limits<float>::infinity());
    logits = torch::full_like(logits, -std::numeric_limits<float>::infinity()).scatter(-1, index, sorted);
  }
  return torch::multinomial(torch::softmax(logits, -1), 1, false, gen).squeeze(-1);
}

}  // namespace

StatusOr<std::vector<GeneratedSample>> Generate(SequenceModelImpl& model, const GenerateOptions& o) {
  const Vocabulary& v = Vocabulary::Get();
  if (o.count < 1) return InvalidArgument("count: expected >= 1");
  if (o.max_new_tokens < 1) return InvalidArgument("tokens: expected >= 1");
  if (o.top_k < 0) return InvalidArgument("top-k: expected >= 0");
  if (!(o.top_p > 0 && o.top_p <= 1)) return InvalidArgument("top-p: expected 0 < p <= 1");
  std::vector<int32_t> primer = o.primer.empty() ? std::vector<int32_t>{v.Bos()} : o.primer;
  GrammarState primed;
  for (size_t i = 0; i < primer.size(); ++i) {
    Status s = primed.Advance(primer[i]);
    if (!s.ok()) return InvalidArgument("primer token " + std::to_string(i) + ": " + s.message());
    if (primed.finished()) return InvalidArgument("primer token " + std::to_string(i) + ": EOS inside the primer");
  }
  if (o.bars > 0) primed.set_max_bars(primed.bars() + o.bars);

  torch::NoGradGuard no_grad;
  model.eval();
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t B = o.count;
  const int64_t total = static_cast<int64_t>(primer.size()) + o.max_new_tokens;
  const int64_t context = std::min<int64_t>(model.MaxContext(), total);
  at::Generator gen = at::detail::createCPUGenerator(o.seed);

  std::vector<std::vector<int32_t>> seqs(B, primer);
  std::vector<GrammarState> grammar(B, primed);
  std::vector<size_t> last_boundary(B, primer.size());  // tokens up to here form complete events
  std::vector<bool> done(B, false);
  auto state = model.NewState(B, context);
  // Feeds one token per sequence; when a Transformer's cache is full, restarts it on the last half of the context.
  auto feed = [&](const std::vector<int32_t>& next) {
    if (state->position == context) {
      state = model.NewState(B, context);
      const int64_t keep = context / 2;
      for (int64_t k = keep; k > 1; --k) {
        std::vector<int64_t> column(B);
        for (int64_t b = 0; b < B; ++b) {
          // A finished sequence stopped growing (it is fed PAD) and may be shorter than the window kept.
          const size_t n = seqs[b].size();
          column[b] = done[b] || n < static_cast<size_t>(k) ? v.Pad() : seqs[b][n - k];
        }
        model.Step(torch::tensor(column, torch::kInt64), *state);
      }
    }
    std::vector<int64_t> column(next.begin(), next.end());
    return model.Step(torch::tensor(column, torch::kInt64), *state);
  };
  torch::Tensor logits;
  for (size_t i = 0; i < primer.size(); ++i) logits = feed(std::vector<int32_t>(B, primer[i]));

  std::vector<uint8_t> allowed;
  auto mask = torch::empty({B, v.size()}, torch::kBool);
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    bool any = false;
    auto m = mask.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
      grammar[b].Allowed(&allowed);
      for (int id = 0; id < v.size(); ++id) m[b][id] = !allowed[id];
      any |= !done[b];
    }
    if (!any) break;
    auto next = Sample(logits.masked_fill(mask, -std::numeric_limits<float>::infinity()), o, gen);
    std::vector<int32_t> column(B, v.Pad());
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      const int32_t token = static_cast<int32_t>(next[b].item<int64_t>());
      Status s = grammar[b].Advance(token);
      if (!s.ok()) return Status(StatusCode::kInternal, "sampler chose a masked token: " + s.message());
      seqs[b].push_back(token);
      column[b] = token;
      if (grammar[b].finished()) done[b] = true;
      else if (grammar[b].at_boundary()) last_boundary[b] = seqs[b].size();
    }
    if (t + 1 < o.max_new_tokens) logits = feed(column);
  }
  std::vector<GeneratedSample> out(B);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int64_t b = 0; b < B; ++b) {
    if (!done[b]) {  // cut by the token budget: trim to the last complete event and close the piece
      seqs[b].resize(last_boundary[b]);
      seqs[b].push_back(v.Eos());
    }
    out[b].new_tokens = static_cast<int64_t>(seqs[b].size() - primer.size());
    out[b].tokens = std::move(seqs[b]);
    out[b].seconds = seconds;
  }
  return out;
}

}  // namespace cadenza
