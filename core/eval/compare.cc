// Pairwise feature distances, Scott-bandwidth Gaussian KDE on a grid, overlap area and KL divergence.
#include "core/eval/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/eval/piece.h"

namespace cadenza {
namespace {

bool HasValue(const FeatureValue& v) {
  if (v.empty()) return false;
  for (double x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

std::vector<const FeatureValue*> Valid(const std::vector<FeatureValue>& set) {
  std::vector<const FeatureValue*> out;
  for (const FeatureValue& v : set) {
    if (HasValue(v)) out.push_back(&v);
  }
  return out;
}

double Distance(const FeatureValue& a, const FeatureValue& b) {
  double s = 0;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

DistributionComparison NaNComparison() {
  DistributionComparison c;
  c.overlap = c.kl = c.overlap_tails = c.kl_tails = c.bandwidth_p = c.bandwidth_q = kNaN;
  return c;
}
}  // namespace

std::vector<double> IntraSetDistances(const std::vector<FeatureValue>& set) {
  const auto v = Valid(set);
  std::vector<double> d;
  d.reserve(v.size() * (v.size() - (v.empty() ? 0 : 1)) / 2);
  for (size_t i = 0; i < v.size(); ++i) {
    for (size_t j = i + 1; j < v.size(); ++j) d.push_back(Distance(*v[i], *v[j]));
  }
  return d;
}

std::vector<double> InterSetDistances(const std::vector<FeatureValue>& a, const std::vector<FeatureValue>& b) {
  const auto va = Valid(a), vb = Valid(b);
  std::vector<double> d;
  d.reserve(va.size() * vb.size());
  for (const FeatureValue* x : va) {
    for (const FeatureValue* y : vb) d.push_back(Distance(*x, *y));
  }
  return d;
}

double ScottBandwidth(const std::vector<double>& data) {
  const size_t n = data.size();
  if (n < 2) return 0;
  double mean = 0;
  for (double x : data) mean += x;
  mean /= n;
  double var = 0;
  for (double x : data) var += (x - mean) * (x - mean);
  var /= (n - 1);
  return std::sqrt(var) * std::pow(static_cast<double>(n), -0.2);
}

Density GaussianKde(const std::vector<double>& data, double bandwidth, double lo, double hi, int points) {
  Density d;
  d.lo = lo;
  d.step = points > 1 ? (hi - lo) / (points - 1) : 0;
  d.pdf.assign(points, 0.0);
  if (data.empty() || bandwidth <= 0 || points < 2) return d;
  // Linear binning onto a grid 2x finer than the output: error far below the bandwidth, cost independent of n.
  const int fine = 2 * (points - 1) + 1;
  const double fstep = (hi - lo) / (fine - 1);
  std::vector<double> weight(fine, 0.0);
  for (double x : data) {
    const double pos = std::clamp((x - lo) / fstep, 0.0, static_cast<double>(fine - 1));
    const int i = std::min(static_cast<int>(pos), fine - 2);
    const double f = pos - i;
    weight[i] += 1 - f;
    weight[i + 1] += f;
  }
  const double norm = 1.0 / (data.size() * bandwidth * std::sqrt(2 * M_PI));
  const int reach = static_cast<int>(std::ceil(8 * bandwidth / fstep));  // the kernel beyond 8 sigma is < 1e-14
  std::vector<double> kernel(reach + 1);
  for (int k = 0; k <= reach; ++k) {
    const double z = k * fstep / bandwidth;
    kernel[k] = std::exp(-0.5 * z * z) * norm;
  }
  for (int g = 0; g < points; ++g) {
    const int c = 2 * g;
    double s = 0;
    for (int i = std::max(0, c - reach); i <= std::min(fine - 1, c + reach); ++i) {
      if (weight[i] != 0) s += weight[i] * kernel[std::abs(i - c)];
    }
    d.pdf[g] = s;
  }
  return d;
}

namespace {
// A Gaussian KDE at `points` evenly spaced points on [lo, hi] (lo == hi: one point repeated). Exact (a sum over
// the data) for small data; else the data are binned linearly onto a grid twice as fine, summed over all bins
// without a cut-off, so a density far from the data is as small (not 0) as the exact sum's.
std::vector<double> KdeOnPoints(const std::vector<double>& data, double bw, double lo, double hi, int points) {
  std::vector<double> out(points, 0.0);
  const double norm = 1.0 / (data.size() * bw * std::sqrt(2 * M_PI));
  const double step = points > 1 ? (hi - lo) / (points - 1) : 0;
  if (!(hi > lo) || data.size() * static_cast<size_t>(points) <= 4000000) {
    const int distinct = hi > lo ? points : 1;
    for (int g = 0; g < distinct; ++g) {
      const double x = lo + g * step;
      double s = 0;
      for (double d : data) {
        const double z = (x - d) / bw;
        s += std::exp(-0.5 * z * z);
      }
      out[g] = s * norm;
    }
    for (int g = distinct; g < points; ++g) out[g] = out[0];
    return out;
  }
  const int fine = 2 * (points - 1) + 1;
  const double fstep = (hi - lo) / (fine - 1);
  std::vector<double> weight(fine, 0.0);
  for (double x : data) {
    const double pos = std::clamp((x - lo) / fstep, 0.0, static_cast<double>(fine - 1));
    const int i = std::min(static_cast<int>(pos), fine - 2);
    const double f = pos - i;
    weight[i] += 1 - f;
    weight[i + 1] += f;
  }
  std::vector<double> kernel(fine);
  for (int k = 0; k < fine; ++k) {
    const double z = k * fstep / bw;
    kernel[k] = std::exp(-0.5 * z * z) * norm;
  }
  for (int g = 0; g < points; ++g) {
    double s = 0;
    for (int i = 0; i < fine; ++i) {
      if (weight[i] != 0) s += weight[i] * kernel[std::abs(i - 2 * g)];
    }
    out[g] = s;
  }
  return out;
}

std::pair<double, double> Range(const std::vector<double>& v) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {*lo, *hi};
}
}  // namespace

double MgevalOverlap(const std::vector<double>& p, const std::vector<double>& q, double bw_p, double bw_q) {
  const auto [plo, phi] = Range(p);
  const auto [qlo, qhi] = Range(q);
  const double lo = std::min(plo, qlo), hi = std::max(phi, qhi);
  constexpr int kIntervals = 2048;  // Simpson's rule; mgeval uses scipy's adaptive quad over the same interval
  const std::vector<double> dp = KdeOnPoints(p, bw_p, lo, hi, kIntervals + 1);
  const std::vector<double> dq = KdeOnPoints(q, bw_q, lo, hi, kIntervals + 1);
  double s = 0;
  for (int g = 0; g <= kIntervals; ++g) {
    const double w = (g == 0 || g == kIntervals) ? 1 : (g % 2 ? 4 : 2);
    s += w * std::min(dp[g], dq[g]);
  }
  return s * (hi - lo) / kIntervals / 3;
}

double MgevalKl(const std::vector<double>& p, const std::vector<double>& q, double bw_p, double bw_q) {
  constexpr int kSamples = 1000;  // mgeval's num_sample
  const auto [plo, phi] = Range(p);
  const auto [qlo, qhi] = Range(q);
  const std::vector<double> dp = KdeOnPoints(p, bw_p, plo, phi, kSamples);
  const std::vector<double> dq = KdeOnPoints(q, bw_q, qlo, qhi, kSamples);
  double sp = 0, sq = 0;
  for (int i = 0; i < kSamples; ++i) {
    sp += dp[i];
    sq += dq[i];
  }
  double kl = 0;
  for (int i = 0; i < kSamples; ++i) {
    const double a = dp[i] / sp, b = dq[i] / sq;
    if (a <= 0) continue;
    if (b <= 0) return std::numeric_limits<double>::infinity();
    kl += a * std::log(a / b);
  }
  return kl;
}

DistributionComparison CompareDistributions(const std::vector<double>& p, const std::vector<double>& q, int points) {
  if (p.size() < 2 || q.size() < 2 || points < 2) return NaNComparison();
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto* set : {&p, &q}) {
    for (double x : *set) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  }
  DistributionComparison c;
  // mgeval: each set's own Scott bandwidth, undefined for a constant set.
  const double scott_p = ScottBandwidth(p), scott_q = ScottBandwidth(q);
  if (scott_p > 0 && scott_q > 0) {
    c.overlap = std::min(1.0, MgevalOverlap(p, q, scott_p, scott_q));
    c.kl = MgevalKl(p, q, scott_p, scott_q);
  } else {
    c.overlap = c.kl = kNaN;
  }
  // The tail-inclusive variant.
  const double floor = hi > lo ? 0.01 * (hi - lo) : 1e-3 * std::max(1.0, std::abs(hi));
  c.bandwidth_p = std::max(scott_p, floor);
  c.bandwidth_q = std::max(scott_q, floor);
  const double margin = 4 * std::max(c.bandwidth_p, c.bandwidth_q);
  lo -= margin;
  hi += margin;
  const Density dp = GaussianKde(p, c.bandwidth_p, lo, hi, points);
  const Density dq = GaussianKde(q, c.bandwidth_q, lo, hi, points);
  double overlap = 0, sp = 0, sq = 0;
  for (int g = 0; g < points; ++g) {
    const double w = (g == 0 || g == points - 1) ? 0.5 : 1.0;  // trapezoid rule
    overlap += w * std::min(dp.pdf[g], dq.pdf[g]);
    sp += dp.pdf[g];
    sq += dq.pdf[g];
  }
  c.overlap_tails = std::min(1.0, overlap * dp.step);
  double kl = 0;
  for (int g = 0; g < points; ++g) {
    const double a = dp.pdf[g] / sp, b = std::max(dq.pdf[g] / sq, 1e-10);
    if (a > 0) kl += a * std::log(a / b);
  }
  c.kl_tails = std::max(0.0, kl);
  return c;
}

Summary Summarize(const std::vector<double>& values) {
  std::vector<double> v;
  v.reserve(values.size());
  for (double x : values) {
    if (std::isfinite(x)) v.push_back(x);
  }
  Summary s;
  s.count = static_cast<int>(v.size());
  if (v.empty()) {
    s.mean = s.std = s.min = s.max = s.median = kNaN;
    return s;
  }
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  double var = 0;
  for (double x : v) var += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(var / (v.size() - 1)) : 0.0;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

FeatureComparison CompareFeature(const std::string& name, const std::vector<FeatureValue>& generated,
                                 const std::vector<FeatureValue>& reference) {
  FeatureComparison f;
  f.feature = name;
  f.generated = static_cast<int>(Valid(generated).size());
  f.reference = static_cast<int>(Valid(reference).size());
  const std::vector<double> ig = IntraSetDistances(generated), ir = IntraSetDistances(reference);
  const std::vector<double> inter = InterSetDistances(generated, reference);
  f.intra_generated = Summarize(ig);
  f.intra_reference = Summarize(ir);
  f.inter = Summarize(inter);
  f.reference_vs_inter = CompareDistributions(ir, inter);
  f.generated_vs_inter = CompareDistributions(ig, inter);
  f.generated_vs_reference = CompareDistributions(ig, ir);
  return f;
}

}  // namespace cadenza
