// The dataset manifest (manifest.json): JSON encoding, validation that names the field at fault, splits.
#include "storage/manifest.h"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

using nlohmann::json;

// Reads typed fields out of a JSON object and remembers the first error, with the field's path in it.
class FieldReader {
 public:
  FieldReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  const json* Find(const char* key, const char* expected) {
    if (!error_.empty()) return nullptr;
    if (!object_.is_object()) {
      Fail(where_.empty() ? std::string() : where_, std::string("expected an object"));
      return nullptr;
    }
    auto it = object_.find(key);
    if (it == object_.end()) {
      Fail(Path(key), std::string("missing (expected ") + expected + ")");
      return nullptr;
    }
    return &*it;
  }

  std::string String(const char* key) {
    const json* v = Find(key, "a string");
    if (!v) return {};
    if (!v->is_string()) return Fail(Path(key), "expected a string, got " + Show(*v)), std::string();
    return v->get<std::string>();
  }

  int64_t Int(const char* key, int64_t min, int64_t max) {
    const json* v = Find(key, "an integer");
    if (!v) return 0;
    if (!v->is_number_integer()) return Fail(Path(key), "expected an integer, got " + Show(*v)), 0;
    int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                    ? INT64_MAX
                    : v->get<int64_t>();
    if (x < min || x > max) {
      Fail(Path(key), "expected an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                          v->dump());
      return 0;
    }
    return x;
  }

  double Number(const char* key, double min, double max) {
    const json* v = Find(key, "a number");
    if (!v) return 0;
    if (!v->is_number()) return Fail(Path(key), "expected a number, got " + Show(*v)), 0;
    double x = v->get<double>();
    if (!(x >= min && x <= max)) {
      Fail(Path(key), "expected a number in [" + Format(min) + ", " + Format(max) + "], got " + v->dump());
      return 0;
    }
    return x;
  }

  const json* Array(const char* key) {
    const json* v = Find(key, "an array");
    if (!v) return nullptr;
    if (!v->is_array()) return Fail(Path(key), "expected an array, got " + Show(*v)), nullptr;
    return v;
  }

  const json* Object(const char* key) {
    const json* v = Find(key, "an object");
    if (!v) return nullptr;
    if (!v->is_object()) return Fail(Path(key), "expected an object, got " + Show(*v)), nullptr;
    return v;
  }

  void Fail(const std::string& field, const std::string& message) {
    if (error_.empty()) error_ = (field.empty() ? std::string() : field + ": ") + message;
  }
  std::string Path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

  static std::string Show(const json& v) {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return std::string(v.type_name()) + " " + text;
  }
  static std::string Format(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }

 private:
  const json& object_;
  std::string where_;
  std::string error_;
};

bool IsHex(const std::string& s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A shard file must be a plain name inside the dataset folder.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}


}  // namespace

const char* SplitName(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kVal: return "val";
    case Split::kTest: return "test";
  }
  return "train";
}

StatusOr<Split> ParseSplit(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "val") return Split::kVal;
  if (name == "test") return Split::kTest;
  return InvalidArgument("expected train|val|test, got \"" + name + "\"");
}

Split SplitForHash(uint64_t content_hash, double val_fraction, double test_fraction) {
  // The top 53 bits as a double in [0, 1): exact, so the split is the same on every machine.
  const double u = static_cast<double>(content_hash >> 11) * (1.0 / 9007199254740992.0);
  if (u < val_fraction) return Split::kVal;
  if (u < val_fraction + test_fraction) return Split::kTest;
  return Split::kTrain;
}

std::string Manifest::ToJson() const {
  json j;
  j["format_version"] = format_version;
  j["vocabulary"] = {{"name", vocab_name}, {"version", vocab_version}, {"hash", vocab_hash}, {"tokens", vocabulary}};
  j["val_fraction"] = val_fraction;
  j["test_fraction"] = test_fraction;
  j["created_utc"] = created_utc.empty() ? UtcTimestamp() : created_utc;
  json shards_json = json::array();
  for (const ShardInfo& s : shards) {
    shards_json.push_back(
        {{"file", s.file}, {"sha256", s.sha256}, {"pieces", s.pieces}, {"tokens", s.tokens}, {"bytes", s.bytes}});
  }
  j["shards"] = std::move(shards_json);
  json pieces_json = json::array();
  for (const PieceMeta& p : pieces) {
    pieces_json.push_back({{"id", p.id},
                           {"source", p.source},
                           {"split", SplitName(p.split)},
                           {"shard", p.shard},
                           {"index_in_shard", p.index_in_shard},
                           {"tokens", p.tokens},
                           {"notes", p.notes},
                           {"bars", p.bars},
                           {"seconds", p.seconds},
                           {"time_signatures", p.time_signatures},
                           {"tempo_bpm", p.tempo_bpm},
                           {"key", p.key},
                           {"mean_onset_error_ms", p.mean_onset_error_ms}});
  }
  j["pieces"] = std::move(pieces_json);
  return j.dump(1) + "\n";
}

StatusOr<Manifest> Manifest::FromJson(const std::string& text, const std::string& path_for_errors) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    return DataLoss(path_for_errors + ": not valid JSON: " + e.what());
  }
  auto fail = [&](const std::string& message) { return DataLoss(path_for_errors + ": " + message); };

  Manifest m;
  FieldReader top(root, "");
  m.format_version = static_cast<int>(top.Int("format_version", 1, INT32_MAX));
  if (top.ok() && m.format_version != kFormatVersion) {
    return fail("format_version: " + std::to_string(m.format_version) + " is not supported by this build (it reads " +
                std::to_string(kFormatVersion) + ")");
  }
  if (const json* vocab = top.Object("vocabulary")) {
    FieldReader v(*vocab, "vocabulary");
    m.vocab_name = v.String("name");
    m.vocab_version = static_cast<int>(v.Int("version", 0, INT32_MAX));
    m.vocab_hash = v.String("hash");
    if (const json* tokens = v.Array("tokens")) {
      for (size_t i = 0; i < tokens->size() && v.ok(); ++i) {
        if (!(*tokens)[i].is_string()) {
          v.Fail("vocabulary.tokens[" + std::to_string(i) + "]", "expected a string");
        } else {
          m.vocabulary.push_back((*tokens)[i].get<std::string>());
        }
      }
    }
    if (v.ok() && !IsHex(m.vocab_hash, 16)) v.Fail("vocabulary.hash", "expected 16 lowercase hex digits");
    if (!v.ok()) return fail(v.error());
  }
  m.val_fraction = top.Number("val_fraction", 0, 1);
  m.test_fraction = top.Number("test_fraction", 0, 1);
  if (top.ok() && m.val_fraction + m.test_fraction >= 1) {
    top.Fail("test_fraction", "val_fraction + test_fraction must be < 1");
  }
  m.created_utc = top.String("created_utc");
  if (!top.ok()) return fail(top.error());

  const json* shards = top.Array("shards");
  if (!shards) return fail(top.error());
  for (size_t i = 0; i < shards->size(); ++i) {
    FieldReader r((*shards)[i], "shards[" + std::to_string(i) + "]");
    ShardInfo s;
    s.file = r.String("file");
    s.sha256 = r.String("sha256");
    s.pieces = r.Int("pieces", 0, INT64_MAX);
    s.tokens = r.Int("tokens", 0, INT64_MAX);
    s.bytes = r.Int("bytes", 0, INT64_MAX);
    if (r.ok() && !IsPlainFileName(s.file)) r.Fail(r.Path("file"), "expected a file name inside the dataset folder");
    if (r.ok() && !IsHex(s.sha256, 64)) r.Fail(r.Path("sha256"), "expected 64 lowercase hex digits");
    if (!r.ok()) return fail(r.error());
    m.shards.push_back(std::move(s));
  }
  if (m.shards.empty()) return fail("shards: expected at least one shard");

  const json* pieces = top.Array("pieces");
  if (!pieces) return fail(top.error());
  std::map<std::string, size_t> seen_ids;
  std::vector<int64_t> pieces_per_shard(m.shards.size(), 0);
  std::vector<int64_t> tokens_per_shard(m.shards.size(), 0);
  int prev_shard = 0;
  for (size_t i = 0; i < pieces->size(); ++i) {
    const std::string where = "pieces[" + std::to_string(i) + "]";
    FieldReader r((*pieces)[i], where);
    PieceMeta p;
    p.id = r.String("id");
    p.source = r.String("source");
    const std::string split = r.String("split");
    p.shard = static_cast<int>(r.Int("shard", 0, static_cast<int64_t>(m.shards.size()) - 1));
    p.index_in_shard = r.Int("index_in_shard", 0, INT64_MAX);
    p.tokens = r.Int("tokens", 0, INT64_MAX);
    p.notes = r.Int("notes", 0, INT64_MAX);
    p.bars = r.Int("bars", 0, INT64_MAX);
    p.seconds = r.Number("seconds", 0, 1e12);
    if (const json* ts = r.Array("time_signatures")) {
      for (size_t k = 0; k < ts->size() && r.ok(); ++k) {
        if (!(*ts)[k].is_string()) {
          r.Fail(where + ".time_signatures[" + std::to_string(k) + "]", "expected a string like \"4/4\"");
        } else {
          p.time_signatures.push_back((*ts)[k].get<std::string>());
        }
      }
    }
    p.tempo_bpm = r.Number("tempo_bpm", 0, 1e9);
    p.key = r.String("key");
    p.mean_onset_error_ms = r.Number("mean_onset_error_ms", 0, 1e12);
    if (!r.ok()) return fail(r.error());
    StatusOr<Split> parsed = ParseSplit(split);
    if (!parsed.ok()) return fail(where + ".split: " + parsed.status().message());
    p.split = *parsed;
    if (!IsHex(p.id, 16)) return fail(where + ".id: expected 16 lowercase hex digits, got \"" + p.id + "\"");
    auto [it, inserted] = seen_ids.emplace(p.id, i);
    if (!inserted) return fail(where + ".id: " + p.id + " repeats pieces[" + std::to_string(it->second) + "]");
    if (p.shard < prev_shard) {
      return fail(where + ".shard: pieces must be ordered by shard (" + std::to_string(p.shard) + " after " +
                  std::to_string(prev_shard) + ")");
    }
    prev_shard = p.shard;
    if (p.index_in_shard != pieces_per_shard[p.shard]) {
      return fail(where + ".index_in_shard: expected " + std::to_string(pieces_per_shard[p.shard]) + ", got " +
                  std::to_string(p.index_in_shard) + " (pieces must be ordered by shard and index)");
    }
    ++pieces_per_shard[p.shard];
    tokens_per_shard[p.shard] += p.tokens;
    m.pieces.push_back(std::move(p));
  }
  for (size_t s = 0; s < m.shards.size(); ++s) {
    if (m.shards[s].pieces != pieces_per_shard[s]) {
      return fail("shards[" + std::to_string(s) + "].pieces: says " + std::to_string(m.shards[s].pieces) +
                  " but pieces[] lists " + std::to_string(pieces_per_shard[s]));
    }
    if (m.shards[s].tokens != tokens_per_shard[s]) {
      return fail("shards[" + std::to_string(s) + "].tokens: says " + std::to_string(m.shards[s].tokens) +
                  " but its pieces hold " + std::to_string(tokens_per_shard[s]));
    }
  }
  return m;
}

StatusOr<Manifest> Manifest::Load(const std::string& path) {
  StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  return FromJson(std::string(bytes->begin(), bytes->end()), path);
}

Status Manifest::Save(const std::string& path) const { return WriteFileAtomic(path, ToJson()); }

Status Manifest::CheckVocabulary(const std::string& path_for_errors) const {
  return CheckVocabulary(path_for_errors, Vocabulary::Get());
}

Status Manifest::CheckVocabulary(const std::string& path_for_errors, const Vocabulary& vocab) const {
  const std::string build_hash = vocab.HashHex();
  const std::string build = vocab.name() + " v" + std::to_string(Vocabulary::kVersion) + " (hash " + build_hash + ")";
  if (vocab_name != vocab.name() || vocab_version != Vocabulary::kVersion || vocab_hash != build_hash) {
    return FailedPrecondition(path_for_errors + ": dataset vocabulary " + vocab_name + " v" +
                              std::to_string(vocab_version) + " (hash " + vocab_hash + ") differs from " + build +
                              ", which this needs; re-ingest the MIDI files with this build (--grid " +
                              std::to_string(vocab.grid()) +
                              (vocab.pedal_tokens() ? " --pedal tokens)" : ", --pedal apply or ignore)"));
  }
  if (!vocabulary.empty() && vocabulary != vocab.names()) {
    return FailedPrecondition(path_for_errors + ": vocabulary.tokens do not match the token names of " + build +
                              " although the hash does; the manifest was edited or is corrupt");
  }
  return Status::Ok();
}

std::string UtcTimestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace cadenza
