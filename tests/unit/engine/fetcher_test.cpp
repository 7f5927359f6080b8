// Fetching labs (engine/fetcher.h) from real repositories: local ones and a
// real git server over smart HTTP on loopback (git http-backend): size
// limits that stop a blob bomb or a big transfer where they are reached
// (issue 14.7), addresses checked as connections are made (14.8), and
// credentials kept by the server per host (15.6).
#include "engine/fetcher.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "support/git_http_server.h"
#include "support/process.h"

namespace fs = std::filesystem;

namespace {
using ads::SourceSettings;

void git(const fs::path& repo, std::vector<std::string> args) {
  std::vector<std::string> argv = {
      "git", "-C", repo.string(), "-c", "user.name=ads-test", "-c", "user.email=ads@test.invalid"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  ASSERT_EQ(ads::test::run(argv, &out), 0) << out;
}

uint64_t tree_bytes(const fs::path& p) {
  uint64_t n = 0;
  std::error_code ec;
  if (!fs::exists(p, ec)) return 0;
  for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

class FetcherTest : public ::testing::Test {
 protected:
  // A lab repository (ads-lab.json, a page) under srv/NAME, plus `extra` files
  // of the given sizes: zeros (compressible) or random bytes (not).
  fs::path make_repo(const std::string& name, const std::map<std::string, std::pair<size_t, bool>>& extra = {}) {
    fs::path repo = tmp.path / "srv" / name;
    fs::create_directories(repo / "site");
    std::ofstream(repo / "ads-lab.json")
        << R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"]}})";
    std::ofstream(repo / "site" / "index.html") << "hello";
    std::mt19937_64 rng(42);
    for (auto& [file, spec] : extra) {
      std::ofstream out(repo / file, std::ios::binary);
      std::string chunk(1 << 16, '\0');
      for (size_t done = 0; done < spec.first; done += chunk.size()) {
        if (spec.second)
          for (auto& c : chunk) c = static_cast<char>(rng());
        out.write(chunk.data(), static_cast<std::streamsize>(std::min(chunk.size(), spec.first - done)));
      }
    }
    git(repo, {"init", "-q", "-b", "main"});
    git(repo, {"add", "-A"});
    git(repo, {"commit", "-q", "-m", "lab"});
    git(repo, {"tag", "v1"});
    git(repo, {"config", "http.receivepack", "false"});
    return repo;
  }
  // Settings for the loopback git server: http allowed, 127.0.0.1 opened.
  SourceSettings loopback() {
    SourceSettings s;
    s.policy.schemes = {"http"};
    s.policy.allow_addresses = {ads::parse_ip_range("127.0.0.1/32", "t").value()};
    return s;
  }
  ads::test::TempDir tmp;
  fs::path dest = tmp.path / "work" / "d1";
  // the largest size of `dest` seen at any progress line of the fetch
  uint64_t max_seen = 0;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> progress = [this](const std::string& s) {
    lines.push_back(s);
    max_seen = std::max(max_seen, tree_bytes(dest));
  };
};

TEST_F(FetcherTest, ABlobBombIsRefusedBeforeAnythingIsCheckedOut) {
  // 64 MiB of zeros packs to a few hundred KiB: the fetch limit does not see it, the checkout limit must
  fs::path repo = make_repo("bomb", {{"zeros.bin", {64u << 20, false}}});
  SourceSettings s;
  s.max_checkout_bytes = 8u << 20;
  auto r = ads::fetch_lab(repo.string(), "", dest.string(), s, true, progress);
  ASSERT_FALSE(r.ok()) << "checked out";
  EXPECT_EQ(r.error().code, "too_large");
  EXPECT_NE(r.error().message.find("checkout limit of 8 MiB"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("zeros.bin"), std::string::npos) << r.error().message;
  EXPECT_LT(max_seen, s.max_checkout_bytes) << "the work dir grew past the limit";
  EXPECT_FALSE(fs::exists(dest)) << "the refused clone is removed";
  // the same lab within a limit that fits is checked out, exactly
  SourceSettings roomy;
  roomy.max_checkout_bytes = 65u << 20;
  auto ok = ads::fetch_lab(repo.string(), "v1", dest.string(), roomy, true, progress);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(fs::file_size(dest / "zeros.bin"), 64u << 20);
}

TEST_F(FetcherTest, TooManyFilesAreRefusedBeforeCheckout) {
  fs::path repo = make_repo("many");
  for (int i = 0; i < 30; ++i) std::ofstream(repo / ("f" + std::to_string(i))) << i;
  git(repo, {"add", "-A"});
  git(repo, {"commit", "-q", "-m", "more"});
  SourceSettings s;
  s.max_checkout_files = 10;
  auto r = ads::fetch_lab(repo.string(), "", dest.string(), s, true, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "too_large");
  EXPECT_NE(r.error().message.find("more than 10 files"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dest));
}

TEST_F(FetcherTest, ABlobBombOverHttpIsRefusedToo) {
  make_repo("bomb", {{"zeros.bin", {64u << 20, false}}});
  ads::test::GitHttpServer server((tmp.path / "srv").string());
  ASSERT_TRUE(server.ok());
  SourceSettings s = loopback();
  s.max_checkout_bytes = 8u << 20;
  auto r = ads::fetch_lab(server.url("bomb"), "", dest.string(), s, false, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "too_large") << r.error().message;
  EXPECT_LT(max_seen, s.max_checkout_bytes);
  EXPECT_FALSE(fs::exists(dest));
}

TEST_F(FetcherTest, AFetchPastItsLimitIsStoppedWhereItGetsThere) {
  make_repo("big", {{"noise.bin", {6u << 20, true}}});  // random: packs to about its size
  ads::test::GitHttpServer server((tmp.path / "srv").string());
  ASSERT_TRUE(server.ok());
  SourceSettings s = loopback();
  s.max_fetch_bytes = 1u << 20;
  auto r = ads::fetch_lab(server.url("big"), "", dest.string(), s, false, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "too_large");
  EXPECT_NE(r.error().message.find("fetch limit of 1 MiB"), std::string::npos) << r.error().message;
  EXPECT_LT(max_seen, 2u << 20);
  EXPECT_FALSE(fs::exists(dest));
  // within the limit it arrives
  s.max_fetch_bytes = 16u << 20;
  auto ok = ads::fetch_lab(server.url("big"), "main", dest.string(), s, false, progress);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->commit.size(), 40u);
}

TEST_F(FetcherTest, TheResolvedAddressIsCheckedNotJustTheName) {
  make_repo("lab");
  ads::test::GitHttpServer server((tmp.path / "srv").string());
  ASSERT_TRUE(server.ok());
  SourceSettings s;
  s.policy.schemes = {"http"};  // loopback stays denied
  // a name, not an address: it passes the check of the source, and is refused when connecting
  std::string url = "http://localhost:" + std::to_string(server.port()) + "/lab";
  auto r = ads::fetch_lab(url, "", dest.string(), s, false, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "forbidden") << r.error().message;
  EXPECT_NE(r.error().message.find("localhost"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 0) << "no request reached the server";
  // an address literal is refused before any connection
  auto lit = ads::fetch_lab(server.url("lab"), "", dest.string(), s, false, progress);
  ASSERT_FALSE(lit.ok());
  EXPECT_EQ(lit.error().code, "forbidden");
  EXPECT_EQ(server.requests(), 0);
  // opened for 127.0.0.1, the same name works
  s.policy.allow_addresses = {ads::parse_ip_range("127.0.0.1/32", "t").value(),
                              ads::parse_ip_range("::1/128", "t").value()};
  auto ok = ads::fetch_lab(url, "", dest.string(), s, false, progress);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
}

// The git-push poller's branch listing goes through the same policy as a
// fetch: a name that resolves to a refused address is refused when
// connecting, and no request reaches the server.
TEST_F(FetcherTest, TheBranchListingChecksTheResolvedAddressToo) {
  make_repo("lab");
  ads::test::GitHttpServer server((tmp.path / "srv").string());
  ASSERT_TRUE(server.ok());
  SourceSettings s;
  s.policy.schemes = {"http"};  // loopback stays denied
  std::string url = "http://localhost:" + std::to_string(server.port()) + "/lab";
  auto r = ads::remote_branch_commit(url, "main", s, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "forbidden") << r.error().message;
  EXPECT_NE(r.error().message.find("cannot read"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 0) << "no request reached the server";
  s.policy.allow_addresses = {ads::parse_ip_range("127.0.0.1/32", "t").value(),
                              ads::parse_ip_range("::1/128", "t").value()};
  auto ok = ads::remote_branch_commit(url, "main", s, false);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->size(), 40u);
  auto none = ads::remote_branch_commit(url, "no-such-branch", s, false);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found") << none.error().message;
}

TEST_F(FetcherTest, APrivateRepositoryIsFetchedWithTheCredentialsConfiguredForItsHost) {
  make_repo("private");
  const std::string password = "s3cret-T0ken-value";
  ads::test::GitHttpServer server((tmp.path / "srv").string(), "labs", password);
  ASSERT_TRUE(server.ok());
  SourceSettings s = loopback();
  // none configured: refused, saying where they go
  auto none = ads::fetch_lab(server.url("private"), "", dest.string(), s, false, progress);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("sources.git_credentials"), std::string::npos) << none.error().message;
  EXPECT_TRUE(server.authorizations().empty());
  // a wrong password: refused once, not asked again and again
  fs::path pw = tmp.path / "git-password";
  std::ofstream(pw) << "wrong\n";
  s.credentials["127.0.0.1"] = {"labs", pw.string(), "", "", ""};
  auto wrong = ads::fetch_lab(server.url("private"), "", dest.string(), s, false, progress);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("refused the credentials"), std::string::npos) << wrong.error().message;
  EXPECT_LE(server.requests(), 4);
  // the right one (the file's first line)
  std::ofstream(pw, std::ios::trunc) << password << "\n";
  lines.clear();
  auto ok = ads::fetch_lab(server.url("private"), "v1", dest.string(), s, false, progress);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(fs::exists(dest / "ads-lab.json"));
  auto seen = server.authorizations();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "Basic " + ads::test::GitHttpServer::base64("labs:" + password));
  for (auto& l : lines) EXPECT_EQ(l.find(password), std::string::npos) << l;
  EXPECT_EQ(wrong.error().message.find("wrong"), std::string::npos) << wrong.error().message;
}

TEST_F(FetcherTest, CredentialsAreGivenOnlyToTheirOwnHost) {
  make_repo("private");
  ads::test::GitHttpServer server((tmp.path / "srv").string(), "labs", "pw");
  ASSERT_TRUE(server.ok());
  SourceSettings s = loopback();
  s.policy.allow_addresses.push_back(ads::parse_ip_range("::1/128", "t").value());
  fs::path pw = tmp.path / "pw";
  std::ofstream(pw) << "pw";
  s.credentials["git.example.org"] = {"labs", pw.string(), "", "", ""};
  auto r = ads::fetch_lab(server.url("private"), "", dest.string(), s, false, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(server.authorizations().empty()) << "127.0.0.1 got git.example.org's credentials";
}

TEST_F(FetcherTest, LocalPathsOutsideTheRootsAreOnlyForAdmins) {
  fs::path repo = make_repo("lab");
  SourceSettings s;
  auto refused = ads::fetch_lab(repo.string(), "", dest.string(), s, false, progress);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "forbidden");
  s.policy.local_roots = {(tmp.path / "srv").string()};
  auto ok = ads::fetch_lab(repo.string(), "", dest.string(), s, false, progress);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  // a link inside the root that leads out of it
  fs::create_directories(tmp.path / "outside");
  fs::create_symlink(tmp.path / "outside", tmp.path / "srv" / "escape");
  auto esc = ads::fetch_lab((tmp.path / "srv" / "escape").string(), "", (tmp.path / "work" / "d2").string(), s, false,
                            progress);
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(esc.error().code, "forbidden");
}

}  // namespace
