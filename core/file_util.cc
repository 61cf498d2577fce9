// Whole-file reads and crash-safe writes (temp name + fsync + rename).
#include "core/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace cadenza {
namespace {

// Renames `tmp` over `path`, removing `tmp` when that fails.
Status RenameOrRemove(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return IoError(path + ": rename failed: " + err);
  }
  return Status::Ok();
}

// Renames the synced `tmp` over `path` (removing `tmp` when that fails) and fsyncs the folder.
Status RenameAndSyncFolder(const std::string& tmp, const std::string& path) {
  CADENZA_RETURN_IF_ERROR(RenameOrRemove(tmp, path));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return SyncDirectory(parent.empty() ? "." : parent.string());
}

}  // namespace

StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return IoError(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return IoError(path + ": read error");
  return bytes;
}

Status WriteFileAtomic(const std::string& path, const void* data, size_t size, unsigned mode,
                       Durability durability) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());  // a leftover of a killed writer would keep its own mode
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return IoError(tmp + ": cannot create: " + std::strerror(errno));

  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string err = w < 0 ? std::strerror(errno) : "short write";
      ::close(fd);
      ::unlink(tmp.c_str());
      return IoError(tmp + ": write failed: " + err);
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  const bool sync = durability == Durability::kSynced;
  if (sync && ::fsync(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return IoError(tmp + ": fsync failed: " + err);
  }
  if (::close(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return IoError(tmp + ": close failed: " + err);
  }
  return sync ? RenameAndSyncFolder(tmp, path) : RenameOrRemove(tmp, path);
}

Status CommitTempFile(const std::string& tmp, const std::string& path) {
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return IoError(tmp + ": cannot open for fsync: " + err);
  }
  if (::fsync(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return IoError(tmp + ": fsync failed: " + err);
  }
  ::close(fd);
  return RenameAndSyncFolder(tmp, path);
}

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(dir + ": cannot open directory: " + std::strerror(errno));
  ::fsync(fd);  // some filesystems refuse fsync on directories; the rename is still in place
  ::close(fd);
  return Status::Ok();
}

Status MakeOwnerOnly(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(path + ": cannot create: " + std::strerror(errno));
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = IoError(path + ": cannot stat: " + std::strerror(errno));
  } else if ((st.st_mode & 077) != 0 && ::fchmod(fd, st.st_mode & 0700) != 0) {
    s = IoError(path + ": cannot restrict to its owner (chmod 600): " + std::strerror(errno));
  }
  ::close(fd);
  return s;
}

std::string ReadableByOthersWarning(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 044) == 0) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "warning: " + what + " " + path + " is readable by " + ((st.st_mode & 004) ? "every user" : "its group") +
         " (mode " + mode + "); chmod 600 " + path;
}

StatusOr<FileLock> FileLock::TryAcquire(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(path + ": cannot open the lock file: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) return IoError(path + ": cannot lock: " + std::strerror(err));
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Unavailable(path + ": " + what + (pid.empty() ? "" : " (held by pid " + pid + ")"));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds without the pid; only the refusal message of another process loses it.
  }
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace cadenza
