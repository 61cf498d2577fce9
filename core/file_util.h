// Small file helpers shared by core and storage: whole-file reads, atomic writes, owner-only files, folder locks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path);
// Who makes a WriteFileAtomic durable.
enum class Durability {
  // WriteFileAtomic fsyncs the file before the rename and its folder after: after a crash `path` is the old file or
  // the whole new one.
  kSynced,
  // Renamed into place unsynced: for a caller that fsyncs a batch of files and their folder itself before it relies
  // on them (Ingest: every file of <out>.partial at once, before the folder is published). Until then a crash may
  // leave `path` missing, old or torn.
  kCallerSyncs,
};
// Writes to "<path>.tmp-<pid>" (a leftover of that name removed first, then created anew with `mode`), fsyncs it
// unless `durability` says the caller does, then renames it over `path` (and fsyncs the folder, likewise). On
// failure the temporary is removed and `path` is left as it was.
Status WriteFileAtomic(const std::string& path, const void* data, size_t size, unsigned mode = 0644,
                       Durability durability = Durability::kSynced);
inline Status WriteFileAtomic(const std::string& path, const std::string& text,
                              Durability durability = Durability::kSynced) {
  return WriteFileAtomic(path, text.data(), text.size(), 0644, durability);
}
// Secrets and state (bearer tokens, a coordinator's database): readable and writable by the owner only (0600)
// from the moment the file exists.
inline Status WritePrivateFileAtomic(const std::string& path, const std::string& text) {
  return WriteFileAtomic(path, text.data(), text.size(), 0600);
}
// For a file that a library opens by name (SQLite's database; SQLite gives its -wal and -shm files the database's
// mode): creates `path` empty with mode 0600 if it is missing, else removes the group and other bits of an existing
// one. Errors name the file.
Status MakeOwnerOnly(const std::string& path);
// Empty when `path` is missing or neither group nor others may read it; else one line for the log naming the file,
// e.g. "warning: tokens file /x/tokens.txt is readable by other users (mode 0644); chmod 600 /x/tokens.txt".
std::string ReadableByOthersWarning(const std::string& path, const std::string& what);
// The second half of WriteFileAtomic, for files that a library writes by name (torch, HDF5, FluidSynth): fsyncs
// `tmp`, renames it over `path` and fsyncs the folder, so that after a crash `path` is the old file or the whole new
// one. On failure `tmp` is removed and `path` is left as it was.
Status CommitTempFile(const std::string& tmp, const std::string& path);
// fsyncs a directory so a rename inside it survives a crash.
Status SyncDirectory(const std::string& dir);

// An exclusive flock(2) on a lock file, held until the object is destroyed or the process ends in any way (the
// kernel drops it on SIGKILL too). The holder's pid is written into the file so that a refusal can name it.
class FileLock {
 public:
  // Never waits. When another process holds the lock: Unavailable (retryable: the holder goes away) with
  // "<path>: <what> (held by pid N)".
  static StatusOr<FileLock> TryAcquire(const std::string& path, const std::string& what);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cadenza
