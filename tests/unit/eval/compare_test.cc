// Set comparison (mgeval): Scott bandwidth, KDE normalisation, overlap/KL of equal, shifted and constant sets; report; RunEvaluation against a
// fake ReferencePieces.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/eval/compare.h"
#include "core/eval/evaluate.h"
#include "core/synthetic.h"

namespace cadenza {
namespace {

// A deterministic, roughly normal sample: sums of a fixed LCG's uniforms.
std::vector<double> Sample(int n, uint64_t seed, double mean, double scale) {
  std::vector<double> v;
  uint64_t x = seed;
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int k = 0; k < 12; ++k) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      s += static_cast<double>(x >> 11) / 9007199254740992.0;
    }
    v.push_back(mean + scale * (s - 6.0));
  }
  return v;
}

std::vector<FeatureValue> AsFeature(const std::vector<double>& v) {
  std::vector<FeatureValue> f;
  for (double x : v) f.push_back({x});
  return f;
}

TEST(CompareTest, ScottBandwidthAsScipy) {
  // std (ddof 1) of 1..5 is sqrt(2.5); factor 5^(-1/5).
  EXPECT_NEAR(ScottBandwidth({1, 2, 3, 4, 5}), std::sqrt(2.5) * std::pow(5.0, -0.2), 1e-12);
  EXPECT_DOUBLE_EQ(ScottBandwidth({3}), 0.0);
}

TEST(CompareTest, KdeIntegratesToOneAndPeaksAtTheData) {
  const std::vector<double> data = Sample(500, 7, 2.0, 1.0);
  const Density d = GaussianKde(data, ScottBandwidth(data), -4, 8, 601);
  double area = 0;
  size_t peak = 0;
  for (size_t i = 0; i < d.pdf.size(); ++i) {
    area += d.pdf[i] * d.step;
    if (d.pdf[i] > d.pdf[peak]) peak = i;
  }
  EXPECT_NEAR(area, 1.0, 1e-3);
  EXPECT_NEAR(d.lo + peak * d.step, 2.0, 0.3);
  // A single point: a Gaussian of the bandwidth, value 1/(h sqrt(2 pi)) at the point.
  const Density one = GaussianKde({0.0}, 0.5, -2, 2, 401);
  EXPECT_NEAR(one.pdf[200], 1.0 / (0.5 * std::sqrt(2 * M_PI)), 1e-3);
}

TEST(CompareTest, OverlapAndKlAsMgevalComputesThem) {
  // Worked out with mgeval's formulas (mgeval/utils.py overlap_area, kl_dist) in numpy, scipy's gaussian_kde
  // written out (Scott factor n^(-1/5), std with ddof 1) and quad replaced by a 2,000,001-point trapezoid:
  // overlap 0.656108116316, KL(A||B) 0.004841618163, KL(B||A) 0.004924019091.
  const std::vector<double> a = {0.1, 0.5, 0.9, 1.7, 2.2, 2.3, 4.0}, b = {0.8, 1.1, 1.9, 2.5, 3.0, 3.1, 5.5, 6.0};
  const DistributionComparison c = CompareDistributions(a, b);
  EXPECT_NEAR(c.overlap, 0.656108116316, 1e-6);
  EXPECT_NEAR(c.kl, 0.004841618163, 1e-9);
  EXPECT_NEAR(CompareDistributions(b, a).kl, 0.004924019091, 1e-9);
  EXPECT_NEAR(CompareDistributions(b, a).overlap, c.overlap, 1e-12);
  // Large sets take the binned path: the same numbers within a small error.
  const std::vector<double> big_a = Sample(3000, 11, 0.0, 1.0), big_b = Sample(3000, 12, 0.7, 1.3);
  const double exact_overlap = MgevalOverlap(std::vector<double>(big_a.begin(), big_a.begin() + 1000),
                                             std::vector<double>(big_b.begin(), big_b.begin() + 1000),
                                             ScottBandwidth(big_a), ScottBandwidth(big_b));
  const double binned_overlap = MgevalOverlap(big_a, big_b, ScottBandwidth(big_a), ScottBandwidth(big_b));
  EXPECT_NEAR(binned_overlap, exact_overlap, 0.03);  // different samples of the same distributions
}

TEST(CompareTest, MgevalLeavesTheTailsOutAndKlIgnoresAShift) {
  const std::vector<double> a = Sample(400, 1, 0.0, 1.0);
  // A set against itself: mgeval integrates over [min, max] only, so the tails beyond are missing (< 1); the
  // tail-inclusive variant gives 1.
  const DistributionComparison same = CompareDistributions(a, a);
  EXPECT_LT(same.overlap, 1.0);
  EXPECT_GT(same.overlap, 0.97);
  EXPECT_NEAR(same.overlap_tails, 1.0, 1e-5);
  EXPECT_NEAR(same.kl, 0.0, 1e-9);
  // mgeval's KL reads each density on its own set's range: a shifted copy of a set has KL 0 there.
  std::vector<double> moved = a;
  for (double& x : moved) x += 10;
  EXPECT_NEAR(CompareDistributions(a, moved).kl, 0.0, 1e-9);
  EXPECT_LT(CompareDistributions(a, moved).overlap, 1e-3);
  EXPECT_GT(CompareDistributions(a, moved).kl_tails, 5);
}

TEST(CompareTest, TailInclusiveOverlapAndKl) {
  const std::vector<double> a = Sample(400, 1, 0.0, 1.0);
  const DistributionComparison same = CompareDistributions(a, a);
  EXPECT_NEAR(same.overlap_tails, 1.0, 1e-5);
  EXPECT_NEAR(same.kl_tails, 0.0, 1e-9);
  const DistributionComparison other_draw = CompareDistributions(a, Sample(400, 2, 0.0, 1.0));
  EXPECT_GT(other_draw.overlap_tails, 0.85);
  EXPECT_LT(other_draw.kl_tails, 0.1);
  // Two unit normals one standard deviation apart overlap by 2 Phi(-1/2) = 0.617.
  const DistributionComparison shifted = CompareDistributions(a, Sample(400, 2, 1.0, 1.0));
  EXPECT_NEAR(shifted.overlap_tails, 0.617, 0.08);
  EXPECT_NEAR(shifted.overlap, 0.617, 0.08);  // most of the two densities lies inside [min, max]
  EXPECT_GT(shifted.kl_tails, 0.25);
  const DistributionComparison far = CompareDistributions(a, Sample(400, 2, 10.0, 1.0));
  EXPECT_LT(far.overlap_tails, 1e-3);
  EXPECT_GT(far.kl_tails, 5);
  // Constant sets: no mgeval density (scipy cannot estimate one: NaN); the tail variant floors the bandwidth.
  EXPECT_NEAR(CompareDistributions({2, 2, 2}, {2, 2}).overlap_tails, 1.0, 1e-3);
  EXPECT_LT(CompareDistributions({2, 2, 2}, {5, 5}).overlap_tails, 1e-3);
  EXPECT_TRUE(std::isnan(CompareDistributions({2, 2, 2}, {2, 2}).overlap));
  EXPECT_TRUE(std::isnan(CompareDistributions({2, 2, 2}, {1, 5}).kl));
  EXPECT_TRUE(std::isnan(CompareDistributions({1}, {1, 2}).overlap));
  EXPECT_TRUE(std::isnan(CompareDistributions({1}, {1, 2}).overlap_tails));
}

TEST(CompareTest, SetAgainstItselfAndAgainstAShiftedSet) {
  const std::vector<FeatureValue> ref = AsFeature(Sample(80, 3, 5.0, 1.0));
  const FeatureComparison self = CompareFeature("x", ref, ref);
  EXPECT_NEAR(self.generated_vs_reference.overlap_tails, 1.0, 1e-5);
  EXPECT_GT(self.generated_vs_reference.overlap, 0.9);  // mgeval's: [min, max] only
  EXPECT_GT(self.reference_vs_inter.overlap_tails, 0.95);
  EXPECT_GT(self.reference_vs_inter.overlap, 0.9);
  EXPECT_EQ(self.generated, 80);
  EXPECT_EQ(self.intra_reference.count, 80 * 79 / 2);
  EXPECT_EQ(self.inter.count, 80 * 80);
  // Shifted by five standard deviations: inter-set distances move away from the intra-set ones.
  const FeatureComparison shifted = CompareFeature("x", AsFeature(Sample(80, 4, 10.0, 1.0)), ref);
  EXPECT_LT(shifted.reference_vs_inter.overlap, 0.25);
  EXPECT_GT(shifted.reference_vs_inter.kl_tails, self.reference_vs_inter.kl_tails + 1.0);
  EXPECT_GT(shifted.inter.mean, self.inter.mean + 3.0);
  EXPECT_NEAR(shifted.generated_vs_reference.overlap_tails, 1.0, 0.3);  // both sets are equally spread
  // NaN samples are left out; vectors use the Euclidean distance.
  const FeatureComparison vec = CompareFeature("v", {{0, 0}, {3, 4}, {NAN, 1}}, {{0, 0}, {0, 0}});
  EXPECT_EQ(vec.generated, 2);
  EXPECT_DOUBLE_EQ(vec.intra_generated.mean, 5.0);
  EXPECT_DOUBLE_EQ(vec.inter.max, 5.0);
}

TEST(CompareTest, SummaryIgnoresNaN) {
  const Summary s = Summarize({1, 2, NAN, 3, 4});
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_NEAR(s.std, std::sqrt(5.0 / 3), 1e-12);
}

TEST(ReportTest, JsonHoldsPiecesSetStatsAndComparison) {
  EvaluationReport report;
  for (int k = 0; k < 3; ++k) {
    std::vector<EvalNote> notes;
    for (int b = 0; b < 8; ++b) notes.push_back({12 * b, 12 * b + 12, 60 + (b * (k + 1)) % 12, false});
    auto m = EvaluatePiece(MakeUniformPiece(2, 4, 4, notes), EvalOptions{});
    ASSERT_TRUE(m.ok()) << m.status().message();
    m->name = "piece" + std::to_string(k);
    report.pieces.push_back(*m);
    report.reference.push_back(*m);
  }
  report.skipped.push_back({"bad.mid", "bad.mid: byte 0: expected 'MThd'"});
  report.reference_dataset = "ds";
  report.reference_split = "test";
  CompareSets(&report);
  ASSERT_EQ(report.comparisons.size(), FeatureNames().size());
  EXPECT_EQ(FeatureValues(report.pieces[0]).size(), FeatureNames().size());
  const nlohmann::json j = nlohmann::json::parse(ReportJson(report));
  EXPECT_EQ(j["pieces"].size(), 3u);
  EXPECT_EQ(j["pieces"][1]["name"], "piece1");
  EXPECT_EQ(j["skipped"][0]["input"], "bad.mid");
  EXPECT_EQ(j["summary"]["pieces"], 3);
  EXPECT_DOUBLE_EQ(j["set"]["syncopation"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(j["set"]["pitch_class_histogram"]["mean"].size(), 12u);
  EXPECT_TRUE(j["pieces"][0]["rhythm"]["groove_consistency"].is_number());
  EXPECT_EQ(j["reference"]["pieces"], 3);
  for (const std::string& f : FeatureNames()) EXPECT_TRUE(j["reference"]["comparison"].contains(f)) << f;
  EXPECT_NEAR(j["reference"]["comparison"]["pitch_class_entropy"]["generated_vs_reference"]["overlap_tails"].get<double>(), 1.0, 1e-3);
  EXPECT_TRUE(j["reference"]["comparison"]["pitch_class_entropy"]["generated_vs_reference"].contains("overlap"));
  const std::string table = SideBySideTable({"mine"}, {report});
  EXPECT_NE(table.find("metric  "), std::string::npos) << table;
  EXPECT_NE(table.find("reference (test)"), std::string::npos) << table;
  EXPECT_NE(table.find("overlap mine"), std::string::npos) << table;
  EXPECT_NE(table.find("\nsyncopation "), std::string::npos) << table;
  EXPECT_EQ(table.find("pitch_class_histogram"), std::string::npos) << "vector features stay out of the table";
  // Undefined values are null, not NaN (which JSON cannot hold).
  report.pieces[0].melody.avg_pitch_deviation = NAN;
  EXPECT_TRUE(nlohmann::json::parse(ReportJson(report))["pieces"][0]["melody"]["avg_pitch_deviation"].is_null());
}

// An in-memory reference set: the seam that storage's OpenReferenceSplit fills from a dataset split.
class FakeReference : public ReferencePieces {
 public:
  std::vector<std::pair<std::string, StatusOr<std::vector<int32_t>>>> pieces;
  std::string dataset() const override { return "in-memory"; }
  std::string split() const override { return "val"; }
  size_t size() const override { return pieces.size(); }
  std::string Name(size_t i) const override { return pieces[i].first; }
  StatusOr<std::vector<int32_t>> Tokens(size_t i) const override { return pieces[i].second; }
};

TEST(RunEvaluationTest, ComparesWithAReferenceGivenThroughTheInterface) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("cadenza_eval_reference_" + std::to_string(::getpid()));
  SyntheticOptions o;
  o.count = 6;
  ASSERT_TRUE(WriteSyntheticCorpus(o, dir.string()).ok());
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 6u);
  FakeReference reference;
  for (size_t i = 3; i < files.size(); ++i) reference.pieces.push_back({files[i], ReadPieceTokens(files[i])});
  reference.pieces.push_back({"broken", StatusOr<std::vector<int32_t>>(DataLoss("shard unreadable"))});

  EvaluateRequest request;
  request.inputs = {files[0], files[1], files[2]};
  request.reference = &reference;
  request.jobs = 2;
  auto report = RunEvaluation(request);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->pieces.size(), 3u);
  ASSERT_TRUE(report->has_reference);
  ASSERT_EQ(report->reference.size(), 3u);
  EXPECT_EQ(report->reference[0].name, files[3]);
  ASSERT_EQ(report->reference_skipped.size(), 1u);
  EXPECT_EQ(report->reference_skipped[0].input, "broken");
  EXPECT_EQ(report->reference_skipped[0].reason, "shard unreadable");
  EXPECT_EQ(report->comparisons.size(), FeatureNames().size());
  const nlohmann::json j = nlohmann::json::parse(ReportJson(*report));
  EXPECT_EQ(j["reference"]["dataset"], "in-memory");
  EXPECT_EQ(j["reference"]["split"], "val");
  EXPECT_EQ(j["reference"]["pieces"], 3);

  // Without a reference: no comparison; with an empty one: refused before any work.
  request.reference = nullptr;
  auto alone = RunEvaluation(request);
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  EXPECT_FALSE(alone->has_reference);
  EXPECT_FALSE(nlohmann::json::parse(ReportJson(*alone)).contains("reference"));
  FakeReference empty;
  request.reference = &empty;
  auto refused = RunEvaluation(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("\"val\""), std::string::npos) << refused.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cadenza
