// Fused GRU layer: forward keeps the gate activations and h W_hn + b_hn, backward walks them in reverse.
#include "core/model/gru_sequence.h"

#include <cstdint>

#include "core/model/mixed_precision.h"
#include "core/model/vector_math.h"

namespace cadenza {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using kernel::Sigmoid;
using kernel::Tanh;

// One step for B rows: gi [B, 3H] = x W_ih^T + b_ih in, activations (r, z, n) out; gh [B, 3H] = h_prev W_hh^T +
// b_hh; its n third is kept in hn (the backward pass needs it); h = (1 - z) n + z h_prev.
CADENZA_VECTOR_CLONES
void CellForward(float* __restrict gi, const float* __restrict gh, const float* __restrict h_prev,
                 float* __restrict hn, float* __restrict h, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    float* __restrict ir = gi + b * 3 * H;
    float* __restrict iz = ir + H;
    float* __restrict in = ir + 2 * H;
    const float* __restrict hr = gh + b * 3 * H;
    const float* __restrict hz = hr + H;
    const float* __restrict hnb = hr + 2 * H;
    const float* __restrict hp = h_prev + b * H;
    float* __restrict keep = hn + b * H;
    float* __restrict out = h + b * H;
    for (int64_t j = 0; j < H; ++j) {
      const float r = Sigmoid(ir[j] + hr[j]), z = Sigmoid(iz[j] + hz[j]);
      const float n = Tanh(in[j] + r * hnb[j]);
      ir[j] = r;
      iz[j] = z;
      in[j] = n;
      keep[j] = hnb[j];
      out[j] = (1.0f - z) * n + z * hp[j];
    }
  }
}

// The same step backward: dh = dy + dh_rec (from (t+1)'s gh gradient through W_hh) + carry (dh(t+1) z(t+1), the
// direct path). Writes the pre-activation gradients of gi and gh [B, 3H] and the carry to t-1.
CADENZA_VECTOR_CLONES
void CellBackward(const float* __restrict act, const float* __restrict hn, const float* __restrict h_prev,
                  const float* __restrict dy, const float* __restrict dh_rec, float* __restrict carry,
                  float* __restrict dgi, float* __restrict dgh, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    const float* __restrict ar = act + b * 3 * H;
    const float* __restrict az = ar + H;
    const float* __restrict an = ar + 2 * H;
    float* __restrict dir = dgi + b * 3 * H;
    float* __restrict diz = dir + H;
    float* __restrict din = dir + 2 * H;
    float* __restrict dhr = dgh + b * 3 * H;
    float* __restrict dhz = dhr + H;
    float* __restrict dhn = dhr + 2 * H;
    const int64_t row = b * H;
    for (int64_t j = 0; j < H; ++j) {
      const float r = ar[j], z = az[j], n = an[j];
      const float dh = dy[row + j] + dh_rec[row + j] + carry[row + j];
      const float dn = dh * (1.0f - z) * (1.0f - n * n);
      const float dz = dh * (h_prev[row + j] - n) * z * (1.0f - z);
      const float dr = dn * hn[row + j] * r * (1.0f - r);
      dir[j] = dr;
      diz[j] = dz;
      din[j] = dn;
      dhr[j] = dr;
      dhz[j] = dz;
      dhn[j] = dn * r;
      carry[row + j] = dh * z;
    }
  }
}

struct GruFunction : public torch::autograd::Function<GruFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& w_ih,
                               const torch::Tensor& w_hh, const torch::Tensor& b_ih, const torch::Tensor& b_hh,
                               bool bf16) {
    torch::NoGradGuard no_grad;
    auto x = x_in.contiguous();
    const int64_t T = x.size(0), B = x.size(1), In = x.size(2), H = w_hh.size(1);
    // bf16: the GEMMs take bf16 inputs (fp32 accumulation), their results are widened (bias added) into fp32; the
    // cells and the outputs stay fp32. The bf16 copies of x and the weights are kept for backward.
    if (bf16) x = ToBf16(x);
    const auto wi = bf16 ? ToBf16(w_ih) : w_ih, wh = bf16 ? ToBf16(w_hh) : w_hh;
    // Input projections of every step in one GEMM; the recurrent one per step into a scratch row block.
    auto gates = bf16 ? torch::add(b_ih, torch::mm(x.view({T * B, In}), wi.t())).view({T, B, 3 * H})
                      : torch::addmm(b_ih, x.view({T * B, In}), w_ih.t()).view({T, B, 3 * H});
    const auto f32 = gates.options();
    auto hn = torch::empty({T, B, H}, f32);
    auto y = torch::empty({T, B, H}, f32);
    auto gh = b_hh.expand({B, 3 * H}).clone();  // h_0 = 0: the first step's recurrent part is the bias (a copy: it is overwritten)
    auto zeros = torch::zeros({B, H}, f32);
    const auto w_hh_t = wh.t();
    float *pg = gates.data_ptr<float>(), *pn = hn.data_ptr<float>(), *py = y.data_ptr<float>();
    const int64_t step = B * H;
    for (int64_t t = 0; t < T; ++t) {
      if (t > 0) {
        if (bf16) torch::add_out(gh, b_hh, torch::mm(ToBf16(y[t - 1]), w_hh_t));
        else torch::addmm_out(gh, b_hh, y[t - 1], w_hh_t);
      }
      CellForward(pg + t * 3 * step, gh.data_ptr<float>(), t > 0 ? py + (t - 1) * step : zeros.data_ptr<float>(),
                  pn + t * step, py + t * step, B, H);
    }
    ctx->save_for_backward({x, wi, wh, y});
    ctx->saved_data["activations"] = gates;
    ctx->saved_data["hn"] = hn;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w_ih = saved[1], &w_hh = saved[2], &y = saved[3];
    const auto act = ctx->saved_data["activations"].toTensor();
    const auto hn = ctx->saved_data["hn"].toTensor();
    const auto dy = grad_outputs[0].contiguous();
    const int64_t T = x.size(0), B = x.size(1), In = x.size(2), H = w_hh.size(1);
    const bool bf16 = x.scalar_type() == torch::kBFloat16;  // the forward ran in bf16 (x and weights kept so)
    const auto f32 = y.options();
    auto dgi = torch::empty({T, B, 3 * H}, f32);
    auto dgh = torch::empty({T, B, 3 * H}, f32);
    auto carry = torch::zeros({B, H}, f32);
    auto dh_rec = torch::zeros({B, H}, f32);
    auto zeros = torch::zeros({B, H}, f32);
    const float *pa = act.data_ptr<float>(), *pn = hn.data_ptr<float>(), *py = y.data_ptr<float>(),
                *pdy = dy.data_ptr<float>();
    float *pdi = dgi.data_ptr<float>(), *pdh = dgh.data_ptr<float>();
    const int64_t step = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      if (t < T - 1) {
        if (bf16) dh_rec.copy_(torch::mm(ToBf16(dgh[t + 1]), w_hh));
        else torch::mm_out(dh_rec, dgh[t + 1], w_hh);
      }
      CellBackward(pa + t * 3 * step, pn + t * step, t > 0 ? py + (t - 1) * step : zeros.data_ptr<float>(),
                   pdy + t * step, dh_rec.data_ptr<float>(), carry.data_ptr<float>(), pdi + t * 3 * step,
                   pdh + t * 3 * step, B, H);
    }
    // Everything that does not feed the recurrence, over all steps at once (h_0 = 0 adds nothing to dW_hh).
    auto dbi = dgi.view({T * B, 3 * H}).sum(0), dbh = dgh.view({T * B, 3 * H}).sum(0);
    auto di = bf16 ? ToBf16(dgi).view({T * B, 3 * H}) : dgi.view({T * B, 3 * H});
    auto dh = bf16 ? ToBf16(dgh.narrow(0, 1, T - 1)) : dgh.narrow(0, 1, T - 1);
    auto hs = bf16 ? ToBf16(y.narrow(0, 0, T - 1)) : y.narrow(0, 0, T - 1);
    auto widen = [&](torch::Tensor t) { return bf16 ? t.to(torch::kFloat32) : t; };
    auto dx = widen(torch::mm(di, w_ih)).view({T, B, In});
    auto dw_ih = widen(torch::mm(di.t(), x.view({T * B, In})));
    auto dw_hh = T > 1 ? widen(torch::mm(dh.reshape({(T - 1) * B, 3 * H}).t(), hs.reshape({(T - 1) * B, H})))
                       : torch::zeros(w_hh.sizes(), f32);
    return {dx, dw_ih, dw_hh, dbi, dbh, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor GruSequence(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                          const torch::Tensor& b_ih, const torch::Tensor& b_hh) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == w_ih.size(1), "GRU input must be [T, B, ", w_ih.size(1), "], got ", x.sizes());
  TORCH_CHECK(w_hh.size(0) == 3 * w_hh.size(1) && w_ih.size(0) == w_hh.size(0), "GRU weights must be [3H, In] and [3H, H]");
  if (x.scalar_type() != torch::kFloat32 || !x.device().is_cpu() || x.size(0) == 0) {
    auto out = at::gru(x, torch::zeros({1, x.size(1), w_hh.size(1)}, x.options()), {w_ih, w_hh, b_ih, b_hh}, true, 1,
                       0.0, false, false, false);
    return std::get<0>(out);
  }
  return GruFunction::apply(x, w_ih, w_hh, b_ih, b_hh, Bf16Compute());
}

}  // namespace cadenza
