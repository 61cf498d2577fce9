// Small file helpers shared by core and storage: whole-file reads and atomic writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path);
// Writes to "<path>.tmp-<pid>", fsyncs, then renames over `path`.
Status WriteFileAtomic(const std::string& path, const void* data, size_t size);
inline Status WriteFileAtomic(const std::string& path, const std::string& text) {
  return WriteFileAtomic(path, text.data(), text.size());
}
// The second half of WriteFileAtomic, for files that a library writes by name (torch, HDF5, FluidSynth): fsyncs
// `tmp`, renames it over `path` and fsyncs the folder, so that after a crash `path` is the old file or the whole new
// one. On failure `tmp` is removed and `path` is left as it was.
Status CommitTempFile(const std::string& tmp, const std::string& path);
// fsyncs a directory so a rename inside it survives a crash.
Status SyncDirectory(const std::string& dir);

}  // namespace cadenza
