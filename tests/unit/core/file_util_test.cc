// Crash-safe writes (WriteFileAtomic, CommitTempFile for files a library writes by name) and the one
// return-if-error macro (core/status.h).
#include "core/file_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/status.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_file_util_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FileUtilTest, WriteFileAtomicReplacesTheFileAndLeavesNoTemporary) {
  const std::string path = (dir_ / "a.txt").string();
  ASSERT_TRUE(WriteFileAtomic(path, std::string("old")).ok());
  ASSERT_TRUE(WriteFileAtomic(path, std::string("new")).ok());
  EXPECT_EQ(ReadAll(path), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// Durability::kCallerSyncs (Ingest, which fsyncs the whole folder once) differs only in the fsyncs: a leftover
// temporary of a killed writer is replaced, not written into, so it keeps neither its longer bytes nor its mode.
TEST_F(FileUtilTest, WriteFileAtomicLeavingTheSyncToTheCallerReplacesALeftoverTemporary) {
  const std::string path = (dir_ / "manifest.json").string();
  const std::string leftover = path + ".tmp-" + std::to_string(::getpid());
  std::ofstream(leftover, std::ios::binary) << "a longer leftover of a killed writer";
  fs::permissions(leftover, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write);
  ASSERT_TRUE(WriteFileAtomic(path, std::string("{}\n"), Durability::kCallerSyncs).ok());
  EXPECT_EQ(ReadAll(path), "{}\n");
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::others_write, fs::perms::none);
  ASSERT_TRUE(WriteFileAtomic(path, std::string("[]\n"), Durability::kCallerSyncs).ok());
  EXPECT_EQ(ReadAll(path), "[]\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FileUtilTest, CommitTempFileMovesALibraryWrittenFileIntoPlace) {
  const std::string path = (dir_ / "out.wav").string(), tmp = path + ".tmp";
  ASSERT_TRUE(WriteFileAtomic(path, std::string("old")).ok());
  std::ofstream(tmp, std::ios::binary) << "new";
  ASSERT_TRUE(CommitTempFile(tmp, path).ok());
  EXPECT_EQ(ReadAll(path), "new");
  EXPECT_FALSE(fs::exists(tmp));
}

TEST_F(FileUtilTest, CommitTempFileFailsWithoutTouchingTheTarget) {
  const std::string path = (dir_ / "out.h5").string();
  ASSERT_TRUE(WriteFileAtomic(path, std::string("old")).ok());
  Status missing = CommitTempFile(path + ".tmp", path);  // the library never wrote it
  EXPECT_EQ(missing.code(), StatusCode::kIo);
  EXPECT_NE(missing.message().find(path + ".tmp"), std::string::npos) << missing.message();
  const std::string tmp = (dir_ / "x.tmp").string();
  std::ofstream(tmp) << "partial";
  Status into_dir = CommitTempFile(tmp, dir_.string());  // rename over a folder fails
  EXPECT_FALSE(into_dir.ok());
  EXPECT_FALSE(fs::exists(tmp));  // the temporary is removed
  EXPECT_EQ(ReadAll(path), "old");
}

int calls = 0;
Status Step(bool ok) {
  ++calls;
  return ok ? Status::Ok() : InvalidArgument("step " + std::to_string(calls));
}
Status TwoSteps(bool first, bool second) {
  CADENZA_RETURN_IF_ERROR(Step(first));
  CADENZA_RETURN_IF_ERROR(Step(second));
  return Status::Ok();
}
StatusOr<int> Value(bool ok) {
  CADENZA_RETURN_IF_ERROR(Step(ok));
  return 42;
}

TEST(StatusMacro, ReturnsTheFirstErrorFromStatusAndStatusOrFunctions) {
  calls = 0;
  EXPECT_TRUE(TwoSteps(true, true).ok());
  EXPECT_EQ(calls, 2);  // each expression evaluated once
  calls = 0;
  Status s = TwoSteps(false, true);
  EXPECT_EQ(s.message(), "step 1");
  EXPECT_EQ(calls, 1);  // stopped at the first error
  calls = 0;
  EXPECT_EQ(TwoSteps(true, false).message(), "step 2");
  auto v = Value(true);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  auto e = Value(false);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cadenza

namespace cadenza {
namespace {

TEST_F(FileUtilTest, PrivateFilesAreOwnerOnlyAndReadableOnesAreNamed) {
  const std::string secret = (dir_ / "tokens.txt").string();
  ASSERT_TRUE(WritePrivateFileAtomic(secret, "abc demo\n").ok());
  EXPECT_EQ(fs::status(secret).permissions() & fs::perms::mask, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(ReadableByOthersWarning(secret, "tokens file"), "");
  fs::permissions(secret, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  EXPECT_EQ(ReadableByOthersWarning(secret, "tokens file"),
            "warning: tokens file " + secret + " is readable by every user (mode 0644); chmod 600 " + secret);
  EXPECT_EQ(ReadableByOthersWarning((dir_ / "missing").string(), "tokens file"), "");
  // A database file SQLite will open: created owner-only, or tightened when it exists.
  const std::string db = (dir_ / "state.db").string();
  ASSERT_TRUE(MakeOwnerOnly(db).ok());
  EXPECT_EQ(fs::status(db).permissions() & fs::perms::mask, fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(MakeOwnerOnly(secret).ok());
  EXPECT_EQ(ReadableByOthersWarning(secret, "tokens file"), "");
  EXPECT_EQ(ReadAll(secret), "abc demo\n") << "tightening must not change the contents";
}

TEST_F(FileUtilTest, FileLockRefusesASecondHolderByPidUntilReleased) {
  const std::string path = (dir_ / "train.lock").string();
  {
    auto first = FileLock::TryAcquire(path, "busy");
    ASSERT_TRUE(first.ok()) << first.status().message();
    auto second = FileLock::TryAcquire(path, "another process is training here");
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << "retryable: a worker agent retries the task";
    EXPECT_EQ(second.status().message(),
              path + ": another process is training here (held by pid " + std::to_string(::getpid()) + ")");
  }
  EXPECT_TRUE(FileLock::TryAcquire(path, "busy").ok()) << "released when the holder goes";
}

}  // namespace
}  // namespace cadenza
