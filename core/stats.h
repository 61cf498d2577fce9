// Summary statistics of repeated runs (over seeds): mean, sample sd and a Student-t 95% CI. (core/eval's
// Summarize is the NaN-skipping summary of a feature over pieces; core/model/probe.cc's the median of timings.)
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
MetricStats SummarizeRuns(const std::vector<double>& xs);

}  // namespace cadenza
