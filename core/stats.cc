#include "core/stats.h"

#include <algorithm>
#include <cmath>

namespace cadenza {

double StudentT95(int df) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) return 0;
  if (df <= 30) return table[df - 1];
  return 1.959964 + 2.37 / df;  // Cornish-Fisher's first term; within 0.002 of the exact quantile above 30
}

MetricStats SummarizeRuns(const std::vector<double>& xs) {
  MetricStats m;
  m.n = static_cast<int>(xs.size());
  if (xs.empty()) return m;
  double sum = 0;
  m.min = m.max = xs[0];
  for (double x : xs) {
    sum += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean = sum / m.n;
  double ss = 0;
  for (double x : xs) ss += (x - m.mean) * (x - m.mean);
  m.stddev = m.n > 1 ? std::sqrt(ss / (m.n - 1)) : 0.0;
  m.ci95 = m.n > 1 ? StudentT95(m.n - 1) * m.stddev / std::sqrt(static_cast<double>(m.n)) : 0.0;
  return m;
}

}  // namespace cadenza
