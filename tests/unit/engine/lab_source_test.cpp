// Reading a lab's spec on the ADS host (engine/lab_source.h): a spec that is
// a symbolic link is never followed, sizes are checked before reading, and
// a parse error says where, never what (issue 14.1).
#include "engine/lab_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "support/process.h"

namespace fs = std::filesystem;

namespace {
const char* kGoodSpec = R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"]}})";

class LabSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(lab / "scripts");
    // a host file with a secret, outside the lab (a stand-in for /etc/shadow)
    std::ofstream(secret) << "root:$6$s3cretHash:19000:0:99999:7:::\n";
    std::ofstream(host_json) << kGoodSpec;  // a host file that happens to be a valid spec
  }
  ads::test::TempDir tmp;
  fs::path lab = tmp.path / "lab";
  fs::path secret = tmp.path / "shadow";
  fs::path host_json = tmp.path / "host.json";
};

TEST_F(LabSourceTest, ASpecThatIsASymlinkIsRefusedAndNothingOfItsTargetIsShown) {
  for (const char* rel : {"ads-lab.json", "scripts/labspec.json"}) {
    for (const fs::path& target : {secret, fs::path("/proc/self/environ"), host_json}) {
      fs::remove(lab / rel);
      fs::create_symlink(target, lab / rel);
      auto r = ads::read_spec(lab.string());
      ASSERT_FALSE(r.ok()) << rel << " -> " << target << " was read";
      EXPECT_EQ(r.error().code, "invalid");
      EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
      EXPECT_EQ(r.error().message.find("root"), std::string::npos) << r.error().message;
      EXPECT_EQ(r.error().message.find("last read"), std::string::npos) << r.error().message;
      fs::remove(lab / rel);
    }
  }
}

TEST_F(LabSourceTest, AFolderOnTheWayThatIsASymlinkIsRefused) {
  fs::remove_all(lab / "scripts");
  fs::create_directories(tmp.path / "elsewhere");
  fs::copy_file(host_json, tmp.path / "elsewhere" / "labspec.json");
  fs::create_symlink(tmp.path / "elsewhere", lab / "scripts");
  auto r = ads::read_spec(lab.string());
  ASSERT_FALSE(r.ok()) << "scripts/ -> elsewhere was followed";
  EXPECT_NE(r.error().message.find("scripts"), std::string::npos) << r.error().message;
}

TEST_F(LabSourceTest, ARegularSpecIsRead) {
  std::ofstream(lab / "ads-lab.json") << kGoodSpec;
  auto r = ads::read_spec(lab.string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->path, "ads-lab.json");
  EXPECT_EQ(r->text, kGoodSpec);
}

TEST_F(LabSourceTest, AParseErrorSaysWhereNotWhat) {
  std::ofstream(lab / "ads-lab.json") << "{\"ads\": 2,\n  \"os\": root:x:0:0:secret\n}";
  auto r = ads::read_spec(lab.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("root"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("last read"), std::string::npos) << r.error().message;
  // values are not quoted back either
  std::ofstream(lab / "ads-lab.json", std::ios::trunc)
      << R"({"ads":2,"os":{"name":"hunter2-secret","version":"12"},"actions":{"start":["true"]}})";
  r = ads::read_spec(lab.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
}

TEST_F(LabSourceTest, FieldNamesFromTheFileArePrintable) {
  std::ofstream(lab / "ads-lab.json")
      << R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"]},"\u001b[31mx":1})";
  auto r = ads::read_spec(lab.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find('\x1b'), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("\\x1b[31mx"), std::string::npos) << r.error().message;
}

TEST_F(LabSourceTest, SizeIsCheckedBeforeReadingAndAFifoDoesNotHang) {
  int fd = ::open((lab / "ads-lab.json").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t{64} << 30), 0);  // 64 GiB sparse: reading it first would take minutes and memory
  ::close(fd);
  auto r = ads::read_spec(lab.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larger than 1 MiB"), std::string::npos) << r.error().message;
  fs::remove(lab / "ads-lab.json");
  ASSERT_EQ(::mkfifo((lab / "ads-lab.json").c_str(), 0644), 0);
  r = ads::read_spec(lab.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos) << r.error().message;
}

TEST_F(LabSourceTest, ReadLabFileReadsAtMostTheLimit) {
  std::ofstream(lab / "f") << std::string(5000, 'a');
  auto r = ads::read_lab_file(lab.string(), "f", 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "too_large");
  auto ok = ads::read_lab_file(lab.string(), "f", 5000);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 5000u);
  EXPECT_EQ(ads::read_lab_file(lab.string(), "missing", 10).error().code, "not_found");
  EXPECT_EQ(ads::read_lab_file(lab.string(), "../shadow", 10).error().code, "invalid");
}

}  // namespace
