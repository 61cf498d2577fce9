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
  // As mgeval computes them (Yang & Lerch 2018, mgeval/utils.py: overlap_area, kl_dist), each set's density a
  // Gaussian KDE with its own Scott bandwidth (scipy.stats.gaussian_kde):
  double overlap = 0;  // integral of min(p, q) over [min, max] of both sets' values (tails outside left out)
  double kl = 0;       // scipy.stats.entropy(p(x_p), q(x_q)): p at 1000 points spanning p's values, q at 1000
                       // points spanning q's, each normalised to sum 1; inf where q underflows to 0 (as scipy)
  // Tail-inclusive variant (cadenza's before issue 16): both densities on one grid spanning the data +- 4
  // bandwidths, so the tails count; KL there floors q at 1e-10.
  double overlap_tails = 0;
  double kl_tails = 0;
  double bandwidth_p = 0, bandwidth_q = 0;
};
// NaN when a set has fewer than 2 values. mgeval's overlap and kl are NaN when a set's values are all equal
// (scipy cannot estimate that density); the tail-inclusive variant floors each bandwidth at 1% of the combined
// data range (or 1e-3 when all values are equal) so such a set still has a density.
DistributionComparison CompareDistributions(const std::vector<double>& p, const std::vector<double>& q, int points = 512);

// mgeval's two formulas with given bandwidths (exposed for tests).
double MgevalOverlap(const std::vector<double>& p, const std::vector<double>& q, double bandwidth_p, double bandwidth_q);
double MgevalKl(const std::vector<double>& p, const std::vector<double>& q, double bandwidth_p, double bandwidth_q);

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
