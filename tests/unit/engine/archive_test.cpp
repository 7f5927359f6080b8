// The lab packer (engine/archive.h): entries keep their own names, links
// that stay inside arrive as links, links that leave refuse the pack
// (issue 14.2); sizes are checked before reading.
#include "engine/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "support/process.h"

namespace fs = std::filesystem;

namespace {
struct Entry {
  char type;  // 'f', 'd', 'l'
  std::string link;
  std::string data;
};

// What the archive holds, by member name (read back with libarchive).
std::map<std::string, Entry> members(const std::string& tgz) {
  std::map<std::string, Entry> out;
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  EXPECT_EQ(archive_read_open_memory(a.get(), tgz.data(), tgz.size()), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    Entry m;
    auto t = archive_entry_filetype(e);
    m.type = t == AE_IFLNK ? 'l' : t == AE_IFDIR ? 'd' : 'f';
    if (m.type == 'l') m.link = archive_entry_symlink(e);
    if (m.type == 'f') {
      m.data.resize(static_cast<size_t>(archive_entry_size(e)));
      archive_read_data(a.get(), m.data.data(), m.data.size());
    }
    out[archive_entry_pathname(e)] = m;
  }
  return out;
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(lab / "site");
    std::ofstream(lab / "ads-lab.json") << "{}";
    std::ofstream(lab / "site" / "index.html") << "hello";
  }
  ads::test::TempDir tmp;
  fs::path lab = tmp.path / "lab";
};

TEST_F(ArchiveTest, ALinkInsideTheLabIsPackedUnderItsOwnNameAsALink) {
  fs::create_symlink("index.html", lab / "site" / "alias.html");
  fs::create_directories(lab / "pages");
  fs::create_symlink("../site/index.html", lab / "pages" / "home.html");
  auto tgz = ads::tar_gz_directory(lab.string());
  ASSERT_TRUE(tgz.ok()) << tgz.error().message;
  auto m = members(*tgz);
  ASSERT_TRUE(m.count("site/alias.html")) << "the link's own name";
  EXPECT_EQ(m["site/alias.html"].type, 'l');
  EXPECT_EQ(m["site/alias.html"].link, "index.html");
  ASSERT_TRUE(m.count("site/index.html"));
  EXPECT_EQ(m["site/index.html"].type, 'f') << "the target stays a file";
  EXPECT_EQ(m["site/index.html"].data, "hello");
  EXPECT_EQ(m["pages/home.html"].link, "../site/index.html");
}

TEST_F(ArchiveTest, LinksLeavingTheLabRefuseThePackNamingThem) {
  struct Case {
    std::string name, target;
  };
  for (const Case& c : {Case{"abs", "/etc/shadow"}, Case{"site/up", "../../etc/passwd"}, Case{"site/dot", "../.."}}) {
    fs::remove(lab / c.name);
    fs::create_symlink(c.target, lab / c.name);
    auto tgz = ads::tar_gz_directory(lab.string());
    ASSERT_FALSE(tgz.ok()) << c.name;
    EXPECT_EQ(tgz.error().code, "invalid");
    EXPECT_NE(tgz.error().message.find(c.name + " -> " + c.target), std::string::npos) << tgz.error().message;
    fs::remove(lab / c.name);
  }
  // through another link: "self" is the lab's root, so self/.. is above it
  fs::create_symlink(".", lab / "self");
  fs::create_symlink("self/../outside", lab / "chain");
  auto tgz = ads::tar_gz_directory(lab.string());
  ASSERT_FALSE(tgz.ok());
  EXPECT_NE(tgz.error().message.find("chain -> self/../outside"), std::string::npos) << tgz.error().message;
}

TEST_F(ArchiveTest, ALinkedFolderIsNotFollowed) {
  fs::create_directories(tmp.path / "outside");
  std::ofstream(tmp.path / "outside" / "secret") << "s3cret";
  fs::create_symlink("site", lab / "www");  // inside: packed as a link, its files are not packed twice
  auto tgz = ads::tar_gz_directory(lab.string());
  ASSERT_TRUE(tgz.ok()) << tgz.error().message;
  auto m = members(*tgz);
  EXPECT_EQ(m["www"].type, 'l');
  EXPECT_FALSE(m.count("www/index.html"));
}

TEST_F(ArchiveTest, NamesInMessagesArePrintable) {
  std::string name = "bad\xff\x1b[31m";
  fs::create_symlink("/etc/passwd", lab / name);
  auto tgz = ads::tar_gz_directory(lab.string());
  ASSERT_FALSE(tgz.ok());
  EXPECT_NE(tgz.error().message.find("bad\\xff\\x1b[31m -> /etc/passwd"), std::string::npos) << tgz.error().message;
}

TEST_F(ArchiveTest, SizeIsCheckedBeforeReading) {
  // a sparse file far past the limit: refused from its size, not read
  int fd = ::open((lab / "big.bin").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t{64} << 30), 0);  // 64 GiB, no blocks
  ::close(fd);
  auto tgz = ads::tar_gz_directory(lab.string(), 1 << 20);
  ASSERT_FALSE(tgz.ok());
  EXPECT_EQ(tgz.error().code, "too_large");
}

}  // namespace
