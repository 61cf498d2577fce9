// Fused LSTM layer: forward keeps the gate activations and cell states, backward walks them in reverse.
#include "core/model/lstm_sequence.h"

#include <cstdint>

#include "core/model/mixed_precision.h"
#include "core/model/vector_math.h"

namespace cadenza {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using kernel::Sigmoid;
using kernel::Tanh;

// One step for B rows: gates [B, 4H] pre-activations in, activations (i, f, g, o) out; c = f c_prev + i g,
// h = o tanh(c).
CADENZA_VECTOR_CLONES
void CellForward(float* __restrict gates, const float* __restrict c_prev, float* __restrict c, float* __restrict h,
                 int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    float* __restrict gi = gates + b * 4 * H;
    float* __restrict gf = gi + H;
    float* __restrict gg = gi + 2 * H;
    float* __restrict go = gi + 3 * H;
    const float* __restrict cp = c_prev + b * H;
    float* __restrict cb = c + b * H;
    float* __restrict hb = h + b * H;
    for (int64_t j = 0; j < H; ++j) {
      const float i = Sigmoid(gi[j]), f = Sigmoid(gf[j]), g = Tanh(gg[j]), o = Sigmoid(go[j]);
      const float cn = f * cp[j] + i * g;
      gi[j] = i;
      gf[j] = f;
      gg[j] = g;
      go[j] = o;
      cb[j] = cn;
      hb[j] = o * Tanh(cn);
    }
  }
}

// The same step backward: dh = dy + dh_rec (the recurrent gradient), dc carries the cell gradient from t+1 in
// and to t-1 out; writes the pre-activation gradients [B, 4H].
CADENZA_VECTOR_CLONES
void CellBackward(const float* __restrict act, const float* __restrict c, const float* __restrict c_prev,
                  const float* __restrict dy, const float* __restrict dh_rec, float* __restrict dc,
                  float* __restrict dgates, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    const float* __restrict ai = act + b * 4 * H;
    const float* __restrict af = ai + H;
    const float* __restrict ag = ai + 2 * H;
    const float* __restrict ao = ai + 3 * H;
    float* __restrict di = dgates + b * 4 * H;
    float* __restrict df = di + H;
    float* __restrict dg = di + 2 * H;
    float* __restrict dout = di + 3 * H;
    const int64_t row = b * H;
    for (int64_t j = 0; j < H; ++j) {
      const float i = ai[j], f = af[j], g = ag[j], o = ao[j];
      const float tc = Tanh(c[row + j]);
      const float dh = dy[row + j] + dh_rec[row + j];
      const float dct = dc[row + j] + dh * o * (1.0f - tc * tc);
      dout[j] = dh * tc * o * (1.0f - o);
      di[j] = dct * g * i * (1.0f - i);
      df[j] = dct * c_prev[row + j] * f * (1.0f - f);
      dg[j] = dct * i * (1.0f - g * g);
      dc[row + j] = dct * f;
    }
  }
}

struct LstmFunction : public torch::autograd::Function<LstmFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& w_ih,
                               const torch::Tensor& w_hh, const torch::Tensor& b_ih, const torch::Tensor& b_hh,
                               bool bf16) {
    torch::NoGradGuard no_grad;
    auto x = x_in.contiguous();
    const int64_t T = x.size(0), B = x.size(1), In = x.size(2), H = w_hh.size(1);
    // bf16: every GEMM takes bf16 inputs (fp32 accumulation) and its result is widened into the fp32 gates; the
    // cells, the cell state and the outputs stay fp32. The bf16 copies of x and the weights are kept for backward.
    if (bf16) x = ToBf16(x);
    const auto wi = bf16 ? ToBf16(w_ih) : w_ih, wh = bf16 ? ToBf16(w_hh) : w_hh;
    // Input projections of every step in one GEMM; each step then adds h_{t-1} W_hh^T in place.
    auto gates = bf16 ? torch::add(b_ih + b_hh, torch::mm(x.view({T * B, In}), wi.t())).view({T, B, 4 * H})
                      : torch::addmm(b_ih + b_hh, x.view({T * B, In}), w_ih.t()).view({T, B, 4 * H});
    const auto f32 = gates.options();
    auto c = torch::empty({T, B, H}, f32);
    auto y = torch::empty({T, B, H}, f32);
    auto zeros = torch::zeros({B, H}, f32);
    const auto w_hh_t = wh.t();
    float *pg = gates.data_ptr<float>(), *pc = c.data_ptr<float>(), *py = y.data_ptr<float>();
    const int64_t step = B * H;
    for (int64_t t = 0; t < T; ++t) {
      if (t > 0) {
        if (bf16) gates[t].add_(torch::mm(ToBf16(y[t - 1]), w_hh_t));
        else gates[t].addmm_(y[t - 1], w_hh_t);
      }
      CellForward(pg + t * 4 * step, t > 0 ? pc + (t - 1) * step : zeros.data_ptr<float>(), pc + t * step,
                  py + t * step, B, H);
    }
    ctx->save_for_backward({x, wi, wh, y});
    ctx->saved_data["activations"] = gates;
    ctx->saved_data["cells"] = c;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w_ih = saved[1], &w_hh = saved[2], &y = saved[3];
    const auto act = ctx->saved_data["activations"].toTensor();
    const auto c = ctx->saved_data["cells"].toTensor();
    const auto dy = grad_outputs[0].contiguous();
    const int64_t T = x.size(0), B = x.size(1), In = x.size(2), H = w_hh.size(1);
    const bool bf16 = x.scalar_type() == torch::kBFloat16;  // the forward ran in bf16 (x and weights kept so)
    const auto f32 = y.options();
    auto dgates = torch::empty({T, B, 4 * H}, f32);
    auto dc = torch::zeros({B, H}, f32);
    auto dh_rec = torch::zeros({B, H}, f32);
    auto zeros = torch::zeros({B, H}, f32);
    const float *pa = act.data_ptr<float>(), *pc = c.data_ptr<float>(), *pdy = dy.data_ptr<float>();
    float* pdg = dgates.data_ptr<float>();
    const int64_t step = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      if (t < T - 1) {
        if (bf16) dh_rec.copy_(torch::mm(ToBf16(dgates[t + 1]), w_hh));
        else torch::mm_out(dh_rec, dgates[t + 1], w_hh);
      }
      CellBackward(pa + t * 4 * step, pc + t * step, t > 0 ? pc + (t - 1) * step : zeros.data_ptr<float>(),
                   pdy + t * step, dh_rec.data_ptr<float>(), dc.data_ptr<float>(), pdg + t * 4 * step, B, H);
    }
    // Everything that does not feed the recurrence, over all steps at once.
    auto db = dgates.view({T * B, 4 * H}).sum(0);
    auto dg = bf16 ? ToBf16(dgates).view({T * B, 4 * H}) : dgates.view({T * B, 4 * H});
    auto hs = bf16 ? ToBf16(y.narrow(0, 0, T - 1)) : y.narrow(0, 0, T - 1);
    auto widen = [&](torch::Tensor t) { return bf16 ? t.to(torch::kFloat32) : t; };
    auto dx = widen(torch::mm(dg, w_ih)).view({T, B, In});
    auto dw_ih = widen(torch::mm(dg.t(), x.view({T * B, In})));
    auto dw_hh = T > 1 ? widen(torch::mm(dg.narrow(0, B, (T - 1) * B).t(), hs.reshape({(T - 1) * B, H})))
                       : torch::zeros(w_hh.sizes(), f32);
    return {dx, dw_ih, dw_hh, db, db.clone(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor LstmSequence(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                           const torch::Tensor& b_ih, const torch::Tensor& b_hh) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == w_ih.size(1), "LSTM input must be [T, B, ", w_ih.size(1), "], got ", x.sizes());
  TORCH_CHECK(w_hh.size(0) == 4 * w_hh.size(1) && w_ih.size(0) == w_hh.size(0), "LSTM weights must be [4H, In] and [4H, H]");
  if (x.scalar_type() != torch::kFloat32 || !x.device().is_cpu() || x.size(0) == 0) {
    auto out = at::lstm(x, {torch::zeros({1, x.size(1), w_hh.size(1)}, x.options()),
                            torch::zeros({1, x.size(1), w_hh.size(1)}, x.options())},
                        {w_ih, w_hh, b_ih, b_hh}, true, 1, 0.0, false, false, false);
    return std::get<0>(out);
  }
  return LstmFunction::apply(x, w_ih, w_hh, b_ih, b_hh, Bf16Compute());
}

}  // namespace cadenza
