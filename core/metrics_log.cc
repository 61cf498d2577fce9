// TensorBoard's event format is TFRecord framing around tensorflow.Event protos; both are small enough to write
// by hand, which keeps TensorFlow and protobuf schemas out of the training path.
#include "core/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/run_layout.h"

namespace cadenza {
namespace {

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

// Reads a little-endian varint at p (not past end); false when it is cut off.
bool ReadVarint(const uint8_t*& p, const uint8_t* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const uint8_t b = *p++;
    *v |= uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// The step of a serialized Event (field 2); 0 when it has none (the file_version event); -1 when malformed.
int64_t EventStep(const std::string& event) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(event.data());
  const uint8_t* end = p + event.size();
  int64_t step = 0;
  while (p < end) {
    uint64_t key, v;
    if (!ReadVarint(p, end, &key)) return -1;
    switch (key & 7) {
      case 0:
        if (!ReadVarint(p, end, &v)) return -1;
        if ((key >> 3) == 2) step = static_cast<int64_t>(v);
        break;
      case 1: p += 8; break;
      case 5: p += 4; break;
      case 2:
        if (!ReadVarint(p, end, &v) || v > uint64_t(end - p)) return -1;
        p += v;
        break;
      default: return -1;
    }
    if (p > end) return -1;
  }
  return step;
}

// Leading "<digits>" of a row; false when there is none.
bool LeadingStep(const std::string& text, size_t pos, int64_t* step) {
  char* endp = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str() + pos, &endp, 10);
  if (endp == text.c_str() + pos || errno != 0) return false;
  *step = v;
  return true;
}

// Keeps whole lines (ending in '\n') for which keep(line) holds, stopping at the first torn (unterminated) one.
template <typename Keep>
std::string KeepLines(const std::string& text, Keep keep) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last row: the process died inside a write
    const std::string line = text.substr(pos, nl + 1 - pos);
    if (keep(line)) out += line;
    pos = nl + 1;
  }
  return out;
}

StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot read");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Replaces `path` with cut(its bytes) when that differs (atomically, so a crash here leaves one or the other).
template <typename Cut>
Status CutFile(const std::string& path, Cut cut) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::Ok();
  auto bytes = ReadWhole(path);
  if (!bytes.ok()) return bytes.status();
  const std::string kept = cut(*bytes);
  if (kept.size() == bytes->size()) return Status::Ok();  // a cut only ever removes
  return WriteFileAtomic(path, kept.data(), kept.size());
}

Status OpenAppend(const std::string& path, int* fd) {
  *fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (*fd < 0) return IoError(path + ": cannot open for appending: " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

uint32_t MaskedCrc32c(const void* data, size_t size) {
  const uint32_t crc = Crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

std::string MetricsLog::CutCsv(const std::string& text, int64_t step) {
  return KeepLines(text, [step](const std::string& line) {
    int64_t s;
    if (!LeadingStep(line, 0, &s)) return line == "step,tag,value\n";
    return s <= step;
  });
}

std::string MetricsLog::CutJsonl(const std::string& text, int64_t step) {
  static const std::string kPrefix = "{\"step\": ";
  return KeepLines(text, [step](const std::string& line) {
    int64_t s;
    return line.compare(0, kPrefix.size(), kPrefix) == 0 && LeadingStep(line, kPrefix.size(), &s) && s <= step;
  });
}

std::string MetricsLog::CutEvents(const std::string& bytes, int64_t step) {
  std::string out;
  size_t pos = 0;
  while (pos + 12 <= bytes.size()) {
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, bytes.data() + pos, 8);
    std::memcpy(&len_crc, bytes.data() + pos + 8, 4);
    if (len_crc != MaskedCrc32c(&len, 8) || len > bytes.size() - pos - 16) break;  // torn or damaged: stop here
    std::memcpy(&data_crc, bytes.data() + pos + 12 + len, 4);
    const std::string event = bytes.substr(pos + 12, len);
    if (data_crc != MaskedCrc32c(event.data(), event.size())) break;
    const int64_t s = EventStep(event);
    if (s >= 0 && s <= step) out.append(bytes, pos, 16 + len);
    pos += 16 + len;
  }
  return out;
}

StatusOr<std::unique_ptr<MetricsLog>> MetricsLog::Open(const std::string& run_dir, int64_t resume_step,
                                                       size_t flush_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path tb = run_layout::TensorboardDir(run_dir);
  fs::create_directories(tb, ec);
  if (ec) return IoError(tb.string() + ": cannot create: " + ec.message());
  const std::string csv = run_layout::MetricsCsv(run_dir);
  const std::string jsonl = run_layout::MetricsJsonl(run_dir);
  if (resume_step >= 0) {
    CADENZA_RETURN_IF_ERROR(CutFile(csv, [&](const std::string& t) { return CutCsv(t, resume_step); }));
    CADENZA_RETURN_IF_ERROR(CutFile(jsonl, [&](const std::string& t) { return CutJsonl(t, resume_step); }));
    for (const auto& entry : fs::directory_iterator(tb, ec)) {
      if (entry.path().filename().string().rfind("events.out.tfevents.", 0) != 0) continue;
      CADENZA_RETURN_IF_ERROR(CutFile(entry.path().string(), [&](const std::string& b) { return CutEvents(b, resume_step); }));
    }
  }
  std::unique_ptr<MetricsLog> log(new MetricsLog());
  log->flush_bytes_ = flush_bytes;
  const bool fresh = !fs::exists(csv) || fs::file_size(csv, ec) == 0;
  log->csv_.path = csv;
  log->jsonl_.path = jsonl;
  char host[128] = "localhost";
  ::gethostname(host, sizeof host - 1);
  log->event_path_ = (tb / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(WallTime())) + "." + host +
                            "." + std::to_string(::getpid())))
                         .string();
  log->events_.path = log->event_path_;
  for (Sink* sink : {&log->csv_, &log->jsonl_, &log->events_}) CADENZA_RETURN_IF_ERROR(OpenAppend(sink->path, &sink->fd));
  if (fresh) log->csv_.pending = "step,tag,value\n";
  // Every event file starts with a file_version event.
  std::string first;
  Double(&first, 1, WallTime());
  Bytes(&first, 3, "brain.Event:2");
  log->AppendEvent(first);
  CADENZA_RETURN_IF_ERROR(log->Flush());
  return log;
}

MetricsLog::~MetricsLog() {
  (void)Flush();
  for (Sink* sink : {&csv_, &jsonl_, &events_}) {
    if (sink->fd >= 0) ::close(sink->fd);
  }
}

void MetricsLog::AppendEvent(const std::string& event) {
  // TFRecord: uint64 length, masked crc of length, data, masked crc of data (all little-endian).
  const uint64_t len = event.size();
  const uint32_t len_crc = MaskedCrc32c(&len, sizeof len), data_crc = MaskedCrc32c(event.data(), event.size());
  std::string& out = events_.pending;
  out.append(reinterpret_cast<const char*>(&len), 8);
  out.append(reinterpret_cast<const char*>(&len_crc), 4);
  out.append(event);
  out.append(reinterpret_cast<const char*>(&data_crc), 4);
}

Status MetricsLog::Scalar(const std::string& tag, int64_t step, double value) {
  char row[64];
  std::snprintf(row, sizeof row, "%.9g\n", value);
  csv_.pending += std::to_string(step) + "," + tag + "," + row;
  char number[32] = "null";  // JSON has no NaN or infinity
  if (std::isfinite(value)) std::snprintf(number, sizeof number, "%.9g", value);
  jsonl_.pending += "{\"step\": " + std::to_string(step) + ", \"tag\": \"" + JsonEscape(tag) + "\", \"value\": " + number + "}\n";
  AppendEvent(ScalarEvent(tag, step, value));
  if (csv_.pending.size() + jsonl_.pending.size() + events_.pending.size() >= flush_bytes_) return Flush();
  return Status::Ok();
}

Status MetricsLog::WriteOut(Sink& sink) {
  size_t done = 0;
  while (done < sink.pending.size()) {
    const ssize_t w = ::write(sink.fd, sink.pending.data() + done, sink.pending.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      sink.pending.erase(0, done);
      return IoError(sink.path + ": write failed: " + err);
    }
    done += static_cast<size_t>(w);
  }
  sink.pending.clear();
  return Status::Ok();
}

Status MetricsLog::Flush() {
  for (Sink* sink : {&csv_, &jsonl_, &events_}) {
    if (sink->fd >= 0) CADENZA_RETURN_IF_ERROR(WriteOut(*sink));
  }
  return Status::Ok();
}

Status MetricsLog::Sync() {
  CADENZA_RETURN_IF_ERROR(Flush());
  for (Sink* sink : {&csv_, &jsonl_, &events_}) {
    if (::fdatasync(sink->fd) != 0) return IoError(sink->path + ": fdatasync failed: " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace cadenza
