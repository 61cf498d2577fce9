// Summary statistics of repeated measurements (runs over seeds): mean, sample sd and a Student-t 95% CI.
#pragma once

#include <vector>

namespace cadenza {

struct MetricStats {
  int n = 0;
  double mean = 0, stddev = 0, min = 0, max = 0;
  double ci95 = 0;  // half-width of the 95% CI of the mean: t(n-1) * sd / sqrt(n); 0 when n < 2
};

// The two-sided 95% quantile of Student's t with `df` degrees of freedom (0 for df < 1).
double StudentT95(int df);
MetricStats Summarize(const std::vector<double>& xs);

}  // namespace cadenza
