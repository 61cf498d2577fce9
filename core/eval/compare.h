// Set comparison after Yang & Lerch (2018, mgeval): intra/inter-set distance distributions, Gaussian KDE, overlap and KL.
#pragma once

#include <string>
#include <vector>

namespace cadenza {

// One sample's value of one feature: a scalar (size 1) or a vector (e.g. a 12-bin histogram). Distances are
// Euclidean. A sample whose value holds a NaN is left out of that feature's comparison.
using FeatureValue = std::vector<double>;

// Distances between all pairs i < j of one set.
std::vector<double> IntraSetDistances(const std::vector<FeatureValue>& set);
// Distances between every sample of `a` and every sample of `b`.
std::vector<double> InterSetDistances(const std::vector<FeatureValue>& a, const std::vector<FeatureValue>& b);

// scipy.stats.gaussian_kde's default bandwidth in 1-D: n^(-1/5) * standard deviation (ddof = 1).
double ScottBandwidth(const std::vector<double>& data);

// A density estimate evaluated on a regular grid.
struct Density {
  double lo = 0, step = 0;
  std::vector<double> pdf;
};
// Gaussian KDE of `data` with `bandwidth`, on `points` grid points from lo to hi (exact sum over the data, binned
// linearly onto a fine grid first when the data are large).
Density GaussianKde(const std::vector<double>& data, double bandwidth, double lo, double hi, int points);

struct DistributionComparison {
  double overlap = 0;  // integral of min(p, q): 1 for identical distributions, 0 for disjoint ones
  double kl = 0;       // KL(p || q) in nats over the common grid (p, q normalised, q floored at 1e-10)
  double bandwidth_p = 0, bandwidth_q = 0;
};
// Both densities use their own Scott bandwidth, floored at 1% of the combined data range (or 1e-3 when all values
// are equal) so a set of identical values still has a density; the common grid spans the data +- 4 bandwidths.
DistributionComparison CompareDistributions(const std::vector<double>& p, const std::vector<double>& q, int points = 512);

struct Summary {
  int count = 0;  // samples that had a value (NaN left out)
  double mean = 0, std = 0, min = 0, max = 0, median = 0;
};
Summary Summarize(const std::vector<double>& values);

struct FeatureComparison {
  std::string feature;
  int generated = 0, reference = 0;          // samples with a value
  Summary intra_generated, intra_reference, inter;  // of the distances
  DistributionComparison reference_vs_inter;  // intra(reference) against inter(generated, reference): the mgeval figure
  DistributionComparison generated_vs_inter;  // intra(generated) against inter
  DistributionComparison generated_vs_reference;  // intra(generated) against intra(reference)
};
// Needs at least 2 samples with values on each side; otherwise the comparisons stay NaN.
FeatureComparison CompareFeature(const std::string& name, const std::vector<FeatureValue>& generated,
                                 const std::vector<FeatureValue>& reference);

}  // namespace cadenza
