// Tests of manifest.json: round trip, errors that name the field, vocabulary checks, hash-based splits.
#include "storage/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/vocabulary.h"
#include "tests/unit/storage/storage_test_util.h"

namespace cadenza {
namespace {

Manifest SampleManifest() {
  const Vocabulary& vocab = Vocabulary::Get();
  Manifest m;
  m.vocab_name = vocab.name();
  m.vocab_version = Vocabulary::kVersion;
  m.vocab_hash = vocab.HashHex();
  m.vocabulary = vocab.names();
  m.val_fraction = 0.1;
  m.test_fraction = 0.2;
  m.created_utc = "2024-05-01T12:00:00Z";
  m.shards = {{"shard-00000.h5", std::string(64, 'a'), 2, 300, 4096}, {"shard-00001.h5", std::string(64, 'b'), 1, 50, 2048}};
  PieceMeta p;
  p.id = "0123456789abcdef";
  p.source = "folk/reel.mid";
  p.split = Split::kVal;
  p.shard = 0;
  p.index_in_shard = 0;
  p.tokens = 100;
  p.notes = 20;
  p.bars = 4;
  p.seconds = 8.5;
  p.time_signatures = {"4/4", "6/8"};
  p.tempo_bpm = 96.5;
  p.key = "G major";
  p.mean_onset_error_ms = 1.25;
  m.pieces.push_back(p);
  p.id = "fedcba9876543210";
  p.source = "b.mid";
  p.split = Split::kTrain;
  p.index_in_shard = 1;
  p.tokens = 200;
  p.key = "";
  m.pieces.push_back(p);
  p.id = "00000000000000ff";
  p.source = "c.midi";
  p.split = Split::kTest;
  p.shard = 1;
  p.index_in_shard = 0;
  p.tokens = 50;
  m.pieces.push_back(p);
  return m;
}

// Applies `edit` to the JSON of the sample manifest and returns the error message of parsing it.
template <typename Edit>
std::string ErrorAfter(Edit edit) {
  nlohmann::json j = nlohmann::json::parse(SampleManifest().ToJson());
  edit(j);
  StatusOr<Manifest> m = Manifest::FromJson(j.dump(), "manifest.json");
  EXPECT_FALSE(m.ok());
  return m.ok() ? std::string() : m.status().message();
}

TEST(ManifestTest, JsonRoundTripKeepsEveryField) {
  const Manifest in = SampleManifest();
  StatusOr<Manifest> out = Manifest::FromJson(in.ToJson(), "manifest.json");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->format_version, Manifest::kFormatVersion);
  EXPECT_EQ(out->vocab_name, in.vocab_name);
  EXPECT_EQ(out->vocab_version, in.vocab_version);
  EXPECT_EQ(out->vocab_hash, in.vocab_hash);
  EXPECT_EQ(out->vocabulary, in.vocabulary);
  EXPECT_DOUBLE_EQ(out->val_fraction, 0.1);
  EXPECT_DOUBLE_EQ(out->test_fraction, 0.2);
  EXPECT_EQ(out->created_utc, in.created_utc);
  ASSERT_EQ(out->shards.size(), 2u);
  EXPECT_EQ(out->shards[1].file, "shard-00001.h5");
  EXPECT_EQ(out->shards[1].sha256, std::string(64, 'b'));
  EXPECT_EQ(out->shards[0].pieces, 2);
  EXPECT_EQ(out->shards[0].tokens, 300);
  EXPECT_EQ(out->shards[0].bytes, 4096);
  ASSERT_EQ(out->pieces.size(), 3u);
  const PieceMeta& p = out->pieces[0];
  EXPECT_EQ(p.id, "0123456789abcdef");
  EXPECT_EQ(p.source, "folk/reel.mid");
  EXPECT_EQ(p.split, Split::kVal);
  EXPECT_EQ(p.tokens, 100);
  EXPECT_EQ(p.notes, 20);
  EXPECT_EQ(p.bars, 4);
  EXPECT_DOUBLE_EQ(p.seconds, 8.5);
  EXPECT_EQ(p.time_signatures, (std::vector<std::string>{"4/4", "6/8"}));
  EXPECT_DOUBLE_EQ(p.tempo_bpm, 96.5);
  EXPECT_EQ(p.key, "G major");
  EXPECT_DOUBLE_EQ(p.mean_onset_error_ms, 1.25);
  EXPECT_EQ(out->pieces[2].split, Split::kTest);
  EXPECT_EQ(out->pieces[2].shard, 1);
  EXPECT_EQ(out->ToJson(), in.ToJson());
}

TEST(ManifestTest, SaveIsAtomicAndLoadReadsItBack) {
  testing::TempDir dir;
  const std::string path = dir / "manifest.json";
  ASSERT_TRUE(SampleManifest().Save(path).ok());
  StatusOr<Manifest> loaded = Manifest::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->pieces.size(), 3u);
  // Only the manifest is left: no temporary files.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 1);
}

TEST(ManifestTest, LoadOfMissingFileNamesIt) {
  StatusOr<Manifest> m = Manifest::Load("/nonexistent/manifest.json");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("/nonexistent/manifest.json"), std::string::npos) << m.status().message();
}

TEST(ManifestTest, ErrorsNameTheFieldAtFault) {
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][2]["split"] = "training"; }),
            "manifest.json: pieces[2].split: expected train|val|test, got \"training\"");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][1].erase("tokens"); }),
            "manifest.json: pieces[1].tokens: missing (expected an integer)");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["shards"][0]["pieces"] = "two"; }),
            "manifest.json: shards[0].pieces: expected an integer, got string \"two\"");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["vocabulary"]["hash"] = 7; }),
            "manifest.json: vocabulary.hash: expected a string, got number 7");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][0]["shard"] = 5; }),
            "manifest.json: pieces[0].shard: expected an integer in 0..1, got 5");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][0]["id"] = "xyz"; }),
            "manifest.json: pieces[0].id: expected 16 lowercase hex digits, got \"xyz\"");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["shards"][1]["file"] = "../../etc/passwd"; }),
            "manifest.json: shards[1].file: expected a file name inside the dataset folder");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][1]["index_in_shard"] = 4; }),
            "manifest.json: pieces[1].index_in_shard: expected 1, got 4 (pieces must be ordered by shard and index)");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["shards"][1]["pieces"] = 3; }),
            "manifest.json: shards[1].pieces: says 3 but pieces[] lists 1");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][2]["time_signatures"][0] = 3; }),
            "manifest.json: pieces[2].time_signatures[0]: expected a string like \"4/4\"");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["format_version"] = 2; }),
            "manifest.json: format_version: 2 is not supported by this build (it reads 1)");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["val_fraction"] = 1.5; }),
            "manifest.json: val_fraction: expected a number in [0, 1], got 1.5");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"] = nlohmann::json::object(); }),
            "manifest.json: pieces: expected an array, got object {}");
  EXPECT_EQ(ErrorAfter([](nlohmann::json& j) { j["pieces"][1] = 3; }), "manifest.json: pieces[1]: expected an object");
}

TEST(ManifestTest, InvalidJsonIsRefusedWithThePath) {
  StatusOr<Manifest> m = Manifest::FromJson("{\"format_version\": 1,", "data/ds/manifest.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message().rfind("data/ds/manifest.json: not valid JSON", 0), 0u) << m.status().message();
}

TEST(ManifestTest, VocabularyOfThisBuildIsAccepted) {
  EXPECT_TRUE(SampleManifest().CheckVocabulary("manifest.json").ok());
}

TEST(ManifestTest, OtherVocabularyIsRefusedNamingBothVersionsAndHashes) {
  Manifest m = SampleManifest();
  m.vocab_version = 3;
  m.vocab_hash = "00000000deadbeef";
  Status s = m.CheckVocabulary("data/ds/manifest.json");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  const std::string& msg = s.message();
  EXPECT_NE(msg.find("data/ds/manifest.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cadenza-remi-beat-g12 v3 (hash 00000000deadbeef)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cadenza-remi-beat-g12 v2 (hash " + Vocabulary::Get().HashHex() + ")"), std::string::npos) << msg;

  Manifest renamed = SampleManifest();
  renamed.vocab_name = "other-vocab";
  EXPECT_FALSE(renamed.CheckVocabulary("manifest.json").ok());

  Manifest edited = SampleManifest();
  edited.vocabulary[5] = "Tampered";
  EXPECT_FALSE(edited.CheckVocabulary("manifest.json").ok());
}

TEST(ManifestTest, SplitNamesParse) {
  for (Split s : {Split::kTrain, Split::kVal, Split::kTest}) {
    StatusOr<Split> parsed = ParseSplit(SplitName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_FALSE(ParseSplit("Train").ok());
}

TEST(SplitForHashTest, SameHashSameSplit) {
  uint64_t x = 12345;
  for (int i = 0; i < 1000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    EXPECT_EQ(SplitForHash(x, 0.1, 0.2), SplitForHash(x, 0.1, 0.2));
  }
  // Fixed points: the split depends only on the hash's position in [0, 1).
  EXPECT_EQ(SplitForHash(0, 0.1, 0.2), Split::kVal);
  EXPECT_EQ(SplitForHash(UINT64_MAX / 100 * 15, 0.1, 0.2), Split::kTest);
  EXPECT_EQ(SplitForHash(UINT64_MAX, 0.1, 0.2), Split::kTrain);
  EXPECT_EQ(SplitForHash(0, 0, 0), Split::kTrain);
}

TEST(SplitForHashTest, FractionsAreRoughlyHonouredOverTenThousandHashes) {
  int counts[3] = {0, 0, 0};
  uint64_t x = 99;
  const int n = 10000;
  for (int i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t h = x ^ (x >> 29);
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    ++counts[static_cast<int>(SplitForHash(h, 0.05, 0.15))];
  }
  EXPECT_NEAR(counts[static_cast<int>(Split::kVal)] / double(n), 0.05, 0.01);
  EXPECT_NEAR(counts[static_cast<int>(Split::kTest)] / double(n), 0.15, 0.015);
  EXPECT_NEAR(counts[static_cast<int>(Split::kTrain)] / double(n), 0.80, 0.015);
}

}  // namespace
}  // namespace cadenza
