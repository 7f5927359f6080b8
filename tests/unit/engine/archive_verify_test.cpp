// Issue 15.14: ADS checks a backup archive before recording it. A .tar.gz
// read whole passes; anything else - text before the gzip data (tar's
// warnings once came first), a damaged or cut-off stream, a plain tar, not
// an archive at all - is refused with a reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/archive.h"
#include "support/process.h"

namespace {
namespace fs = std::filesystem;

class ArchiveVerify : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp.path / "src" / "sub");
    std::ofstream(tmp.path / "src" / "a.txt") << "alpha";
    std::string random;
    ASSERT_EQ(ads::test::run({"head", "-c", "200000", "/dev/urandom"}, &random), 0);
    std::ofstream(tmp.path / "src" / "sub" / "blob", std::ios::binary) << random;
    good = pack({"-czf"});
  }
  // GNU tar of src with `flags` (the way the agent packs a backup)
  std::string pack(const std::vector<std::string>& flags) {
    fs::path out = tmp.path / "out.tar";
    std::vector<std::string> argv = {"tar"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), {out.string(), "-C", (tmp.path / "src").string(), "."});
    std::string log;
    EXPECT_EQ(ads::test::run(argv, &log), 0) << log;
    return read(out);
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  std::string file_of(const std::string& data) {
    fs::path p = tmp.path / ("f" + std::to_string(n_++) + ".tar.gz");
    std::ofstream(p, std::ios::binary) << data;
    return p.string();
  }
  ads::test::TempDir tmp;
  std::string good;
  int n_ = 0;
};

TEST_F(ArchiveVerify, AWholeTarGzPasses) {
  EXPECT_TRUE(ads::verify_tar_gz(good).ok());
  auto st = ads::verify_tar_gz_file(file_of(good));
  EXPECT_TRUE(st.ok()) << st.error().message;
  // an empty backup directory still packs its "./"
  fs::remove_all(tmp.path / "src");
  fs::create_directories(tmp.path / "src");
  EXPECT_TRUE(ads::verify_tar_gz(pack({"-czf"})).ok());
}

TEST_F(ArchiveVerify, DamagedArchivesAreRefusedWithAReason) {
  struct Case {
    std::string name, data;
  };
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x55);
  std::string crc = good;  // the gzip trailer: CRC-32 and length of the data
  crc[crc.size() - 6] = static_cast<char>(crc[crc.size() - 6] ^ 0x01);
  std::vector<Case> cases = {
      {"tar's warning before the data", "tar: ./app.sock: socket ignored\n" + good},
      {"cut in the middle", good.substr(0, good.size() / 2)},
      {"cut before the trailer", good.substr(0, good.size() - 4)},
      {"a flipped byte", flipped},
      {"a wrong checksum", crc},
      {"a plain tar", pack({"-cf"})},
      {"text", "not an archive at all"},
      {"nothing", ""},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto st = ads::verify_tar_gz(c.data);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid");
    EXPECT_FALSE(st.error().message.empty());
    auto fst = ads::verify_tar_gz_file(file_of(c.data));
    ASSERT_FALSE(fst.ok());
    EXPECT_EQ(fst.error().code, "invalid") << fst.error().message;
  }
  auto missing = ads::verify_tar_gz_file((tmp.path / "nowhere.tar.gz").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "not_found");
}

}  // namespace
