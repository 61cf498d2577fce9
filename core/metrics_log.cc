// TensorBoard's event format is TFRecord framing around tensorflow.Event protos; both are small enough to write
// by hand, which keeps TensorFlow and protobuf schemas out of the training path.
#include "core/metrics_log.h"

#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>

namespace cadenza {
namespace {

uint32_t Crc32c(const uint8_t* p, size_t n) {
  static uint32_t table[256] = {0};
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

// Protobuf wire format: just the pieces an Event with a scalar Summary needs.
void Varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void Tag(std::string* out, int field, int wire_type) { Varint(out, (static_cast<uint64_t>(field) << 3) | wire_type); }
void Bytes(std::string* out, int field, const std::string& bytes) {
  Tag(out, field, 2);
  Varint(out, bytes.size());
  out->append(bytes);
}
void Double(std::string* out, int field, double v) {
  Tag(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out->append(b, 8);
}
void Float(std::string* out, int field, float v) {
  Tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

double WallTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
// Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
std::string ScalarEvent(const std::string& tag, int64_t step, double value) {
  std::string v, summary, event;
  Bytes(&v, 1, tag);
  Float(&v, 2, static_cast<float>(value));
  Bytes(&summary, 1, v);
  Double(&event, 1, WallTime());
  Tag(&event, 2, 0);
  Varint(&event, static_cast<uint64_t>(step));
  Bytes(&event, 5, summary);
  return event;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

uint32_t MaskedCrc32c(const void* data, size_t size) {
  const uint32_t crc = Crc32c(static_cast<const uint8_t*>(data), size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

StatusOr<std::unique_ptr<MetricsLog>> MetricsLog::Open(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path tb = fs::path(run_dir) / "tensorboard";
  fs::create_directories(tb, ec);
  if (ec) return IoError(tb.string() + ": cannot create: " + ec.message());
  std::unique_ptr<MetricsLog> log(new MetricsLog());
  const std::string csv = (fs::path(run_dir) / "metrics.csv").string();
  const bool fresh = !fs::exists(csv);
  log->csv_ = std::fopen(csv.c_str(), "a");
  if (log->csv_ && fresh) std::fputs("step,tag,value\n", log->csv_);
  const std::string jsonl = (fs::path(run_dir) / "metrics.jsonl").string();
  log->jsonl_ = std::fopen(jsonl.c_str(), "a");
  char host[128] = "localhost";
  ::gethostname(host, sizeof host - 1);
  log->event_path_ = (tb / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(WallTime())) + "." + host +
                            "." + std::to_string(::getpid())))
                         .string();
  log->events_ = std::fopen(log->event_path_.c_str(), "ab");
  if (!log->csv_ || !log->jsonl_ || !log->events_) return IoError(run_dir + ": cannot open the metrics files for writing");
  // Every event file starts with a file_version event.
  std::string first;
  Double(&first, 1, WallTime());
  Bytes(&first, 3, "brain.Event:2");
  Status s = log->WriteEvent(first);
  if (!s.ok()) return s;
  return log;
}

MetricsLog::~MetricsLog() {
  for (std::FILE* f : {csv_, jsonl_, events_}) {
    if (f) std::fclose(f);
  }
}

Status MetricsLog::WriteEvent(const std::string& event) {
  // TFRecord: uint64 length, masked crc of length, data, masked crc of data (all little-endian).
  const uint64_t len = event.size();
  const uint32_t len_crc = MaskedCrc32c(&len, sizeof len), data_crc = MaskedCrc32c(event.data(), event.size());
  if (std::fwrite(&len, 8, 1, events_) != 1 || std::fwrite(&len_crc, 4, 1, events_) != 1 ||
      std::fwrite(event.data(), 1, event.size(), events_) != event.size() || std::fwrite(&data_crc, 4, 1, events_) != 1) {
    return IoError(event_path_ + ": write failed");
  }
  return Status::Ok();
}

Status MetricsLog::Scalar(const std::string& tag, int64_t step, double value) {
  std::fprintf(csv_, "%" PRId64 ",%s,%.9g\n", step, tag.c_str(), value);
  char number[32] = "null";  // JSON has no NaN or infinity
  if (std::isfinite(value)) std::snprintf(number, sizeof number, "%.9g", value);
  std::fprintf(jsonl_, "{\"step\": %" PRId64 ", \"tag\": \"%s\", \"value\": %s}\n", step, JsonEscape(tag).c_str(), number);
  return WriteEvent(ScalarEvent(tag, step, value));
}

Status MetricsLog::Flush() {
  if (std::fflush(csv_) != 0 || std::fflush(jsonl_) != 0 || std::fflush(events_) != 0) {
    return IoError(event_path_ + ": flush failed");
  }
  return Status::Ok();
}

}  // namespace cadenza
