// One HDF5 shard file of a dataset: writing (temp name, fsync, rename) and validated reading, via the HDF5 C API.
#include "storage/hdf5_shard.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/file_util.h"
#include "core/vocabulary.h"

namespace cadenza {
// Not in the anonymous namespace: ShardReader::Handles (declared in the header) holds Hids.
namespace hdf5_shard_detail {

// Owns an HDF5 identifier and closes it with the matching H5*close.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Hid(Hid&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      Reset();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = -1;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { Reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports whether HDF5 accepted it (matters for the file: close flushes).
  bool Close() {
    const bool ok = id_ < 0 || closer_(id_) >= 0;
    id_ = -1;
    return ok;
  }

 private:
  void Reset() {
    if (id_ >= 0) closer_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

}  // namespace hdf5_shard_detail

namespace {

using hdf5_shard_detail::Hid;

// Turns off HDF5's printing of its error stack for the lifetime of the guard (errors come back as Status).
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The outermost and innermost descriptions on HDF5's error stack, e.g. "can't read data (inflate() failed)".
std::string Hdf5ErrorText() {
  std::vector<std::string> descs;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* err, void* data) -> herr_t {
        if (err->desc && *err->desc) static_cast<std::vector<std::string>*>(data)->push_back(err->desc);
        return 0;
      },
      &descs);
  H5Eclear2(H5E_DEFAULT);
  if (descs.empty()) return "HDF5 error";
  if (descs.size() == 1) return descs[0];
  return descs.front() + " (" + descs.back() + ")";
}

Status H5Fail(const std::string& path, const std::string& what) {
  return DataLoss(path + ": " + what + ": " + Hdf5ErrorText());
}

Status WriteStringAttribute(hid_t file, const char* name, const std::string& value) {
  Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 || H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    return Status(StatusCode::kInternal, "cannot make an HDF5 string type");
  }
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr(H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* ptr = value.c_str();
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), &ptr) < 0) return IoError(std::string("attribute ") + name);
  return Status::Ok();
}

Status WriteIntAttribute(hid_t file, const char* name, int value) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr(H5Acreate2(file, name, H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const int32_t v = value;
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_INT32, &v) < 0) return IoError(std::string("attribute ") + name);
  return Status::Ok();
}

// Writes a 1-D (cols == 0) or 2-D [rows, cols] dataset; `compress` chunks it with shuffle + deflate(1).
Status WriteArray(hid_t file, const char* name, hid_t file_type, hid_t mem_type, const void* data, hsize_t rows,
                  hsize_t cols, bool compress) {
  const int rank = cols == 0 ? 1 : 2;
  hsize_t dims[2] = {rows, cols};
  hsize_t maxdims[2] = {rows == 0 ? H5S_UNLIMITED : rows, cols};
  Hid space(H5Screate_simple(rank, dims, compress ? maxdims : nullptr), H5Sclose);
  Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!space.valid() || !dcpl.valid()) return IoError(std::string("cannot create the dataspace of /") + name);
  // No modification times in object headers: the same pieces always give the same bytes (and sha256).
  H5Pset_obj_track_times(dcpl.get(), false);
  if (compress) {
    hsize_t chunk[2] = {std::clamp<hsize_t>(rows, 1, kShardTokenChunk), cols};
    if (H5Pset_chunk(dcpl.get(), rank, chunk) < 0 || H5Pset_shuffle(dcpl.get()) < 0 ||
        H5Pset_deflate(dcpl.get(), 1) < 0) {
      return IoError(std::string("cannot set the filters of /") + name);
    }
  }
  Hid dset(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  if (!dset.valid()) return IoError(std::string("cannot create /") + name + ": " + Hdf5ErrorText());
  if (rows > 0 && H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    return IoError(std::string("cannot write /") + name + ": " + Hdf5ErrorText());
  }
  if (!dset.Close()) return IoError(std::string("cannot close /") + name + ": " + Hdf5ErrorText());
  return Status::Ok();
}

Status WriteShardFile(const std::string& tmp, int shard_index, const std::vector<const ShardPiece*>& pieces,
                      const Vocabulary& vocab) {
  // Concatenate the pieces; offsets of bars and beats stay relative to their piece.
  std::vector<int16_t> tokens;
  std::vector<int64_t> piece_token_offsets{0}, piece_bar_offsets{0}, piece_beat_offsets{0};
  std::vector<int64_t> bar_offsets, beat_offsets;
  std::vector<int32_t> bar_start_steps;
  std::vector<int16_t> bar_meters;
  size_t id_size = 1;
  for (const ShardPiece* p : pieces) id_size = std::max(id_size, p->id.size());
  std::vector<char> ids(pieces.size() * id_size, '\0');
  // Sized up front: growing these one token at a time was 3% of an ingest.
  size_t total_tokens = 0, total_bars = 0, total_beats = 0;
  for (const ShardPiece* p : pieces) {
    total_tokens += p->tokens.size();
    total_bars += p->bar_offsets.size();
    total_beats += p->beat_offsets.size();
  }
  tokens.reserve(total_tokens);
  bar_offsets.reserve(total_bars);
  bar_start_steps.reserve(total_bars);
  bar_meters.reserve(2 * total_bars);
  beat_offsets.reserve(total_beats);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const ShardPiece& p = *pieces[i];
    if (p.bar_start_steps.size() != p.bar_offsets.size() || p.bar_meters.size() != 2 * p.bar_offsets.size()) {
      return InvalidArgument("piece " + p.id + ": bar arrays differ in length");
    }
    const size_t first = tokens.size();
    tokens.resize(first + p.tokens.size());
    for (size_t k = 0; k < p.tokens.size(); ++k) {
      const int32_t t = p.tokens[k];
      if (t < 0 || t > INT16_MAX) {
        return InvalidArgument("piece " + p.id + ": token id " + std::to_string(t) + " does not fit int16");
      }
      tokens[first + k] = static_cast<int16_t>(t);
    }
    bar_offsets.insert(bar_offsets.end(), p.bar_offsets.begin(), p.bar_offsets.end());
    beat_offsets.insert(beat_offsets.end(), p.beat_offsets.begin(), p.beat_offsets.end());
    bar_start_steps.insert(bar_start_steps.end(), p.bar_start_steps.begin(), p.bar_start_steps.end());
    bar_meters.insert(bar_meters.end(), p.bar_meters.begin(), p.bar_meters.end());
    piece_token_offsets.push_back(static_cast<int64_t>(tokens.size()));
    piece_bar_offsets.push_back(static_cast<int64_t>(bar_offsets.size()));
    piece_beat_offsets.push_back(static_cast<int64_t>(beat_offsets.size()));
    std::memcpy(ids.data() + i * id_size, p.id.data(), p.id.size());
  }

  Hid fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  if (fcpl.valid()) H5Pset_obj_track_times(fcpl.get(), false);
  Hid file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl.valid() ? fcpl.get() : H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) return IoError(tmp + ": cannot create HDF5 file: " + Hdf5ErrorText());
  const hid_t f = file.get();
  Status s = WriteStringAttribute(f, "vocab_name", vocab.name());
  if (s.ok()) s = WriteIntAttribute(f, "vocab_version", Vocabulary::kVersion);
  if (s.ok()) s = WriteStringAttribute(f, "vocab_hash", vocab.HashHex());
  if (s.ok()) s = WriteIntAttribute(f, "format_version", kShardFormatVersion);
  if (s.ok()) s = WriteIntAttribute(f, "shard_index", shard_index);
  const hsize_t n = pieces.size();
  if (s.ok()) {
    s = WriteArray(f, "tokens", H5T_STD_I16LE, H5T_NATIVE_INT16, tokens.data(), tokens.size(), 0, true);
  }
  if (s.ok()) {
    s = WriteArray(f, "piece_token_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, piece_token_offsets.data(), n + 1, 0,
                   false);
  }
  if (s.ok()) {
    s = WriteArray(f, "piece_bar_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, piece_bar_offsets.data(), n + 1, 0, false);
  }
  if (s.ok()) {
    s = WriteArray(f, "piece_beat_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, piece_beat_offsets.data(), n + 1, 0,
                   false);
  }
  if (s.ok()) {
    s = WriteArray(f, "bar_token_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, bar_offsets.data(), bar_offsets.size(), 0,
                   true);
  }
  if (s.ok()) {
    s = WriteArray(f, "beat_token_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, beat_offsets.data(), beat_offsets.size(),
                   0, true);
  }
  if (s.ok()) {
    s = WriteArray(f, "bar_start_steps", H5T_STD_I32LE, H5T_NATIVE_INT32, bar_start_steps.data(),
                   bar_start_steps.size(), 0, true);
  }
  if (s.ok()) {
    s = WriteArray(f, "bar_meter", H5T_STD_I16LE, H5T_NATIVE_INT16, bar_meters.data(), bar_meters.size() / 2, 2, true);
  }
  if (s.ok()) {
    Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!type.valid() || H5Tset_size(type.get(), id_size) < 0 || H5Tset_strpad(type.get(), H5T_STR_NULLPAD) < 0) {
      s = Status(StatusCode::kInternal, "cannot make an HDF5 string type");
    } else {
      s = WriteArray(f, "piece_ids", type.get(), type.get(), ids.data(), n, 0, false);
    }
  }
  if (!s.ok()) return s.WithContext(tmp);
  if (!file.Close()) return IoError(tmp + ": cannot close HDF5 file: " + Hdf5ErrorText());
  return Status::Ok();
}

// Reads `count` elements (rows of `cols`, cols == 0 for 1-D) from row `begin` of `name`, converting to mem_type.
Status ReadRows(hid_t dset, const std::string& where, hid_t mem_type, hsize_t begin, hsize_t count, hsize_t cols,
                void* out) {
  if (count == 0) return Status::Ok();
  const int rank = cols == 0 ? 1 : 2;
  Hid file_space(H5Dget_space(dset), H5Sclose);
  hsize_t start[2] = {begin, 0};
  hsize_t size[2] = {count, cols};
  Hid mem_space(H5Screate_simple(rank, size, nullptr), H5Sclose);
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, size, nullptr) < 0 ||
      H5Dread(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0) {
    return DataLoss(where + ": cannot read rows " + std::to_string(begin) + ".." + std::to_string(begin + count) +
                    ": " + Hdf5ErrorText());
  }
  return Status::Ok();
}

StatusOr<std::string> ReadStringAttribute(hid_t file, const std::string& path, const char* name) {
  Hid attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  if (!attr.valid()) return H5Fail(path, std::string("missing attribute ") + name);
  Hid type(H5Aget_type(attr.get()), H5Tclose);
  if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING) {
    return DataLoss(path + ": attribute " + name + ": expected a string");
  }
  Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));  // HDF5 converts neither ASCII <-> UTF-8 nor back
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* value = nullptr;
    if (H5Aread(attr.get(), mem.get(), &value) < 0) return H5Fail(path, std::string("attribute ") + name);
    std::string out = value ? value : "";
    H5free_memory(value);
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  std::string out(size, '\0');
  H5Tset_size(mem.get(), size);
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  if (size > 0 && H5Aread(attr.get(), mem.get(), out.data()) < 0) {
    return H5Fail(path, std::string("attribute ") + name);
  }
  out.resize(std::strlen(out.c_str()));
  return out;
}

StatusOr<int> ReadIntAttribute(hid_t file, const std::string& path, const char* name) {
  Hid attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  if (!attr.valid()) return H5Fail(path, std::string("missing attribute ") + name);
  Hid type(H5Aget_type(attr.get()), H5Tclose);
  if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER) {
    return DataLoss(path + ": attribute " + name + ": expected an integer");
  }
  int32_t v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT32, &v) < 0) return H5Fail(path, std::string("attribute ") + name);
  return static_cast<int>(v);
}

}  // namespace

struct ShardReader::Handles {
  Hid file;
  Hid tokens, bar_offsets, beat_offsets, bar_start_steps, bar_meter;
};

ShardPiece MakeShardPiece(std::string id, std::vector<int32_t> tokens, const Segmentation& segmentation) {
  ShardPiece p;
  p.id = std::move(id);
  p.tokens = std::move(tokens);
  p.beat_offsets = segmentation.beat_token_offsets;
  for (const BarInfo& bar : segmentation.bars) {
    p.bar_offsets.push_back(bar.token_offset);
    p.bar_start_steps.push_back(static_cast<int32_t>(bar.start_step));
    p.bar_meters.push_back(static_cast<int16_t>(bar.numerator));
    p.bar_meters.push_back(static_cast<int16_t>(bar.denominator));
  }
  return p;
}

std::string ShardFileName(int shard_index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%05d.h5", shard_index);
  return buf;
}

Status WriteShard(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces) {
  return WriteShard(path, shard_index, pieces, Vocabulary::Get());
}

namespace {

// Writes the shard under a temporary name, then renames it into place: synced first (CommitTempFile) unless the
// caller syncs a whole batch itself later.
Status WriteShardVia(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces,
                     const Vocabulary& vocabulary, bool sync) {
  const std::string tmp = path + ".tmp";
  {
    QuietHdf5 quiet;
    Status s = WriteShardFile(tmp, shard_index, pieces, vocabulary);
    if (!s.ok()) {
      std::remove(tmp.c_str());
      return s;
    }
  }
  if (sync) return CommitTempFile(tmp, path);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return IoError(path + ": cannot rename " + tmp + " into place: " + err);
  }
  return Status::Ok();
}

}  // namespace

Status WriteShard(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces,
                  const Vocabulary& vocabulary) {
  return WriteShardVia(path, shard_index, pieces, vocabulary, /*sync=*/true);
}

Status WriteShardUnsynced(const std::string& path, int shard_index, const std::vector<const ShardPiece*>& pieces,
                          const Vocabulary& vocabulary) {
  return WriteShardVia(path, shard_index, pieces, vocabulary, /*sync=*/false);
}

ShardReader::~ShardReader() {
  if (handles_) {
    QuietHdf5 quiet;
    handles_.reset();
  }
}

StatusOr<std::unique_ptr<ShardReader>> ShardReader::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return NotFound(path + ": shard file is missing");
  QuietHdf5 quiet;
  std::unique_ptr<ShardReader> reader(new ShardReader());
  reader->path_ = path;
  reader->handles_ = std::make_unique<Handles>();
  Handles& h = *reader->handles_;
  h.file = Hid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!h.file.valid()) return H5Fail(path, "not a readable HDF5 file");
  const hid_t f = h.file.get();

  ShardHeader& hdr = reader->header_;
  StatusOr<std::string> str = ReadStringAttribute(f, path, "vocab_name");
  if (!str.ok()) return str.status();
  hdr.vocab_name = *str;
  str = ReadStringAttribute(f, path, "vocab_hash");
  if (!str.ok()) return str.status();
  hdr.vocab_hash = *str;
  for (auto [name, field] : {std::pair<const char*, int*>{"vocab_version", &hdr.vocab_version},
                             {"format_version", &hdr.format_version},
                             {"shard_index", &hdr.shard_index}}) {
    StatusOr<int> v = ReadIntAttribute(f, path, name);
    if (!v.ok()) return v.status();
    *field = *v;
  }
  if (hdr.format_version != kShardFormatVersion) {
    return DataLoss(path + ": format_version " + std::to_string(hdr.format_version) +
                    " is not supported by this build (it reads " + std::to_string(kShardFormatVersion) + ")");
  }

  // Opens a dataset and checks its rank (and second dimension for 2-D); returns its row count.
  auto open = [&](const char* name, int rank, hsize_t cols, Hid* out, hsize_t* rows) -> Status {
    *out = Hid(H5Dopen2(f, name, H5P_DEFAULT), H5Dclose);
    if (!out->valid()) return H5Fail(path, std::string("missing dataset /") + name);
    Hid space(H5Dget_space(out->get()), H5Sclose);
    hsize_t dims[2] = {0, 0};
    if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != rank ||
        H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0 || (rank == 2 && dims[1] != cols)) {
      return DataLoss(path + ": /" + name + ": expected " +
                      (rank == 1 ? std::string("a 1-D array") : "shape [n, " + std::to_string(cols) + "]"));
    }
    *rows = dims[0];
    return Status::Ok();
  };
  // Reads a whole small 1-D int64 dataset.
  auto read_index = [&](const char* name, std::vector<int64_t>* out) -> Status {
    Hid dset;
    hsize_t rows = 0;
    Status s = open(name, 1, 0, &dset, &rows);
    if (!s.ok()) return s;
    out->resize(rows);
    return ReadRows(dset.get(), path + ": /" + name, H5T_NATIVE_INT64, 0, rows, 0, out->data());
  };
  Status s = read_index("piece_token_offsets", &reader->piece_token_offsets_);
  if (s.ok()) s = read_index("piece_bar_offsets", &reader->piece_bar_offsets_);
  if (s.ok()) s = read_index("piece_beat_offsets", &reader->piece_beat_offsets_);
  if (!s.ok()) return s;

  hsize_t tokens = 0, bars = 0, beats = 0, steps = 0, meters = 0, ids = 0;
  Hid ids_dset;
  s = open("tokens", 1, 0, &h.tokens, &tokens);
  if (s.ok()) s = open("bar_token_offsets", 1, 0, &h.bar_offsets, &bars);
  if (s.ok()) s = open("beat_token_offsets", 1, 0, &h.beat_offsets, &beats);
  if (s.ok()) s = open("bar_start_steps", 1, 0, &h.bar_start_steps, &steps);
  if (s.ok()) s = open("bar_meter", 2, 2, &h.bar_meter, &meters);
  if (s.ok()) s = open("piece_ids", 1, 0, &ids_dset, &ids);
  if (!s.ok()) return s;

  const int64_t n = static_cast<int64_t>(ids);
  auto check_index = [&](const char* name, const std::vector<int64_t>& offsets, hsize_t total) -> Status {
    if (static_cast<int64_t>(offsets.size()) != n + 1) {
      return DataLoss(path + ": /" + name + ": expected " + std::to_string(n + 1) + " entries (pieces + 1), found " +
                      std::to_string(offsets.size()));
    }
    if (offsets.front() != 0 || offsets.back() != static_cast<int64_t>(total)) {
      return DataLoss(path + ": /" + name + ": expected to run from 0 to " + std::to_string(total));
    }
    for (size_t i = 1; i < offsets.size(); ++i) {
      if (offsets[i] < offsets[i - 1]) {
        return DataLoss(path + ": /" + name + ": decreases at entry " + std::to_string(i));
      }
    }
    return Status::Ok();
  };
  s = check_index("piece_token_offsets", reader->piece_token_offsets_, tokens);
  if (s.ok()) s = check_index("piece_bar_offsets", reader->piece_bar_offsets_, bars);
  if (s.ok()) s = check_index("piece_beat_offsets", reader->piece_beat_offsets_, beats);
  if (!s.ok()) return s;
  if (steps != bars || meters != bars) {
    return DataLoss(path + ": /bar_start_steps and /bar_meter must have one row per bar (" + std::to_string(bars) +
                    ")");
  }

  Hid type(H5Dget_type(ids_dset.get()), H5Tclose);
  if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0) {
    return DataLoss(path + ": /piece_ids: expected fixed-length strings");
  }
  const size_t id_size = H5Tget_size(type.get());
  std::vector<char> buf(n * id_size);
  Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), id_size);
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  if (n > 0 && H5Dread(ids_dset.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
    return H5Fail(path, "cannot read /piece_ids");
  }
  for (int64_t i = 0; i < n; ++i) {
    const char* p = buf.data() + i * id_size;
    reader->piece_ids_.emplace_back(p, strnlen(p, id_size));
  }
  return reader;
}

Status ShardReader::CheckPiece(int64_t index, const ShardPiece& piece) const {
  const int64_t size = static_cast<int64_t>(piece.tokens.size());
  auto bad = [&](const std::string& what) {
    return DataLoss(path_ + ": piece " + std::to_string(index) + " (" + piece.id + "): " + what);
  };
  for (size_t b = 0; b < piece.bar_offsets.size(); ++b) {
    const int64_t o = piece.bar_offsets[b];
    if (o < 0 || o >= size || (b > 0 && o <= piece.bar_offsets[b - 1])) {
      return bad("bar offset " + std::to_string(o) + " outside the piece or out of order");
    }
  }
  for (size_t k = 0; k < piece.beat_offsets.size(); ++k) {
    const int64_t o = piece.beat_offsets[k];
    if (o < 0 || o > size || (k > 0 && o < piece.beat_offsets[k - 1])) {
      return bad("beat offset " + std::to_string(o) + " outside the piece or out of order");
    }
  }
  const Vocabulary* vocab = Vocabulary::Find(header_.vocab_name, header_.vocab_version);
  const int vocab_size = vocab ? vocab->size() : Vocabulary::Get().size();
  for (int32_t t : piece.tokens) {
    if (t < 0 || t >= vocab_size) return bad("token id " + std::to_string(t) + " outside the vocabulary");
  }
  return Status::Ok();
}

StatusOr<ShardPiece> ShardReader::ReadPiece(int64_t index) const {
  if (index < 0 || index >= num_pieces()) {
    return InvalidArgument(path_ + ": piece " + std::to_string(index) + " out of range (shard holds " +
                           std::to_string(num_pieces()) + ")");
  }
  QuietHdf5 quiet;
  ShardPiece p;
  p.id = piece_ids_[index];
  const hsize_t t0 = piece_token_offsets_[index], t1 = piece_token_offsets_[index + 1];
  const hsize_t b0 = piece_bar_offsets_[index], b1 = piece_bar_offsets_[index + 1];
  const hsize_t k0 = piece_beat_offsets_[index], k1 = piece_beat_offsets_[index + 1];
  p.tokens.resize(t1 - t0);
  p.bar_offsets.resize(b1 - b0);
  p.bar_start_steps.resize(b1 - b0);
  p.bar_meters.resize(2 * (b1 - b0));
  p.beat_offsets.resize(k1 - k0);
  const Handles& h = *handles_;
  Status s = ReadRows(h.tokens.get(), path_ + ": /tokens", H5T_NATIVE_INT32, t0, t1 - t0, 0, p.tokens.data());
  if (s.ok()) {
    s = ReadRows(h.bar_offsets.get(), path_ + ": /bar_token_offsets", H5T_NATIVE_INT64, b0, b1 - b0, 0,
                 p.bar_offsets.data());
  }
  if (s.ok()) {
    s = ReadRows(h.bar_start_steps.get(), path_ + ": /bar_start_steps", H5T_NATIVE_INT32, b0, b1 - b0, 0,
                 p.bar_start_steps.data());
  }
  if (s.ok()) {
    s = ReadRows(h.bar_meter.get(), path_ + ": /bar_meter", H5T_NATIVE_INT16, b0, b1 - b0, 2, p.bar_meters.data());
  }
  if (s.ok()) {
    s = ReadRows(h.beat_offsets.get(), path_ + ": /beat_token_offsets", H5T_NATIVE_INT64, k0, k1 - k0, 0,
                 p.beat_offsets.data());
  }
  if (s.ok()) s = CheckPiece(index, p);
  if (!s.ok()) return s;
  return p;
}

StatusOr<std::vector<ShardPiece>> ShardReader::ReadAll() const {
  QuietHdf5 quiet;
  const Handles& h = *handles_;
  const hsize_t tokens_n = piece_token_offsets_.back(), bars_n = piece_bar_offsets_.back();
  const hsize_t beats_n = piece_beat_offsets_.back();
  std::vector<int32_t> tokens(tokens_n), steps(bars_n);
  std::vector<int64_t> bars(bars_n), beats(beats_n);
  std::vector<int16_t> meters(2 * bars_n);
  Status s = ReadRows(h.tokens.get(), path_ + ": /tokens", H5T_NATIVE_INT32, 0, tokens_n, 0, tokens.data());
  if (s.ok()) {
    s = ReadRows(h.bar_offsets.get(), path_ + ": /bar_token_offsets", H5T_NATIVE_INT64, 0, bars_n, 0, bars.data());
  }
  if (s.ok()) {
    s = ReadRows(h.bar_start_steps.get(), path_ + ": /bar_start_steps", H5T_NATIVE_INT32, 0, bars_n, 0, steps.data());
  }
  if (s.ok()) s = ReadRows(h.bar_meter.get(), path_ + ": /bar_meter", H5T_NATIVE_INT16, 0, bars_n, 2, meters.data());
  if (s.ok()) {
    s = ReadRows(h.beat_offsets.get(), path_ + ": /beat_token_offsets", H5T_NATIVE_INT64, 0, beats_n, 0,
                 beats.data());
  }
  if (!s.ok()) return s;
  std::vector<ShardPiece> pieces(num_pieces());
  for (int64_t i = 0; i < num_pieces(); ++i) {
    ShardPiece& p = pieces[i];
    p.id = piece_ids_[i];
    const int64_t t0 = piece_token_offsets_[i], t1 = piece_token_offsets_[i + 1];
    const int64_t b0 = piece_bar_offsets_[i], b1 = piece_bar_offsets_[i + 1];
    const int64_t k0 = piece_beat_offsets_[i], k1 = piece_beat_offsets_[i + 1];
    p.tokens.assign(tokens.begin() + t0, tokens.begin() + t1);
    p.bar_offsets.assign(bars.begin() + b0, bars.begin() + b1);
    p.bar_start_steps.assign(steps.begin() + b0, steps.begin() + b1);
    p.bar_meters.assign(meters.begin() + 2 * b0, meters.begin() + 2 * b1);
    p.beat_offsets.assign(beats.begin() + k0, beats.begin() + k1);
    s = CheckPiece(i, p);
    if (!s.ok()) return s;
  }
  return pieces;
}

}  // namespace cadenza
