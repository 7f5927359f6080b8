// TLS for `ads serve` and the CLI: the "tls" settings, the certificate made
// on first start, and a real `ads serve` over HTTPS with the real `ads` CLI
// (real TLS handshakes on loopback).
#include "cli/tls_setup.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using nlohmann::json;
namespace fs = std::filesystem;

TEST(TlsSettings, ParseAndNameTheBadKey) {
  ads::cli::TlsConfig t;
  ASSERT_TRUE(ads::cli::parse_tls_config(json::parse(R"({"mode":"on","names":["ads.lan","10.0.0.5"]})"), t).ok());
  EXPECT_EQ(t.mode, "on");
  EXPECT_EQ(t.names, (std::vector<std::string>{"ads.lan", "10.0.0.5"}));
  struct Case {
    const char* text;
    const char* field;
  };
  for (auto c : std::vector<Case>{{R"("on")", "tls"},
                                  {R"({"mode":"yes"})", "tls.mode"},
                                  {R"({"mode":true})", "tls.mode"},
                                  {R"({"cert":"/a.crt"})", "tls.key"},
                                  {R"({"key":"/a.key"})", "tls.key"},
                                  {R"({"cert":""})", "tls.cert"},
                                  {R"({"names":"ads.lan"})", "tls.names"},
                                  {R"({"names":[""]})", "tls.names"},
                                  {R"({"names":[5]})", "tls.names"},
                                  {R"({"ca":"/x"})", "tls.ca"}}) {
    ads::cli::TlsConfig x;
    auto st = ads::cli::parse_tls_config(json::parse(c.text), x);
    ASSERT_FALSE(st.ok()) << c.text;
    EXPECT_EQ(st.error().field, c.field) << c.text;
  }
}

TEST(TlsSettings, AutoMeansHttpsExceptOnLoopbackWithoutACertificate) {
  ads::cli::TlsConfig t;
  EXPECT_FALSE(ads::cli::tls_enabled(t, "127.0.0.1"));
  EXPECT_FALSE(ads::cli::tls_enabled(t, "::1"));
  EXPECT_TRUE(ads::cli::tls_enabled(t, "0.0.0.0"));
  EXPECT_TRUE(ads::cli::tls_enabled(t, "192.168.1.10"));
  t.cert = "/etc/ads/ads.crt";
  t.key = "/etc/ads/ads.key";
  EXPECT_TRUE(ads::cli::tls_enabled(t, "127.0.0.1"));
  t.mode = "off";
  EXPECT_FALSE(ads::cli::tls_enabled(t, "0.0.0.0"));
  t.mode = "on";
  t.cert.clear();
  EXPECT_TRUE(ads::cli::tls_enabled(t, "127.0.0.1"));

  ads::cli::ServeConfig c;
  c.listen = "0.0.0.0:8443";
  EXPECT_EQ(ads::cli::local_url(c), "https://127.0.0.1:8443");
  c.listen = "127.0.0.1:8089";
  EXPECT_EQ(ads::cli::local_url(c), "http://127.0.0.1:8089");
  c.tls.mode = "on";
  c.listen = "[::1]:8443";
  EXPECT_EQ(ads::cli::local_url(c), "https://[::1]:8443");
}

TEST(TlsSettings, TheCliTrustsWhatItIsGivenElseTheLocalServersCertificate) {
  ads::test::TempDir tmp;
  fs::create_directories(tmp.path / "tls");
  std::ofstream(tmp.path / "tls" / "server.crt") << "x";
  std::string d = tmp.str(), local = d + "/tls/server.crt";
  EXPECT_EQ(ads::cli::cacert_for("https://127.0.0.1:8443", "", d), local);
  EXPECT_EQ(ads::cli::cacert_for("https://localhost:8443/", "", d), local);
  EXPECT_EQ(ads::cli::cacert_for("https://[::1]:8443", "", d), local);
  EXPECT_EQ(ads::cli::cacert_for("https://127.0.0.1:8443", "/my/ca.pem", d), "/my/ca.pem");
  EXPECT_EQ(ads::cli::cacert_for("https://ads.example.test:8443", "", d), "");  // the system's store
  EXPECT_EQ(ads::cli::cacert_for("http://127.0.0.1:8089", "", d), "");
  EXPECT_EQ(ads::cli::cacert_for("https://127.0.0.1:8443", "", d + "/nowhere"), "");
}

TEST(TlsSettings, FirstStartMakesAPrivateKeyAndLaterStartsReuseIt) {
  ads::test::TempDir tmp;
  ads::cli::ServeConfig c;
  c.data_dir = tmp.str();
  c.tls.mode = "on";
  c.tls.names = {"ads.lan"};
  auto a = ads::cli::resolve_tls(c, "127.0.0.1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->enabled);
  EXPECT_TRUE(a->generated);
  EXPECT_EQ(a->cert_file, tmp.str() + "/tls/server.crt");
  struct stat st {};
  ASSERT_EQ(::stat((tmp.path / "tls" / "server.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (const char* n : {"localhost", "127.0.0.1", "::1", "ads.lan"})
    EXPECT_TRUE(ads::http::tls::covers(a->id.cert_pem, n)) << n;
  auto b = ads::cli::resolve_tls(c, "127.0.0.1");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->generated);
  EXPECT_EQ(b->fingerprint, a->fingerprint);

  c.tls.names = {"bad name"};
  auto bad = ads::cli::resolve_tls(c, "127.0.0.1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "tls.names");

  ads::cli::ServeConfig missing;
  missing.data_dir = tmp.str();
  missing.tls.cert = (tmp.path / "no.crt").string();
  missing.tls.key = (tmp.path / "no.key").string();
  auto m = ads::cli::resolve_tls(missing, "127.0.0.1");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().field, "tls.cert");
}

// `ads serve` with TLS on, and the `ads` CLI talking to it.
class ServeTls : public ::testing::Test {
 protected:
  static std::string config(const ads::test::TempDir& tmp, const std::string& text) {
    std::string f = (tmp.path / "ads.json").string();
    std::ofstream(f) << text;
    return f;
  }
  int ads(std::vector<std::string> args, std::string& out) {
    std::vector<std::string> argv = {"env",     "ADS_DATA_DIR=" + data, ADS_CLI_BIN, "--server", server.base(),
                                     "--token", server.token()};
    argv.insert(argv.end(), args.begin(), args.end());
    return ads::test::run(argv, &out);
  }
  ads::test::TempDir tmp;
  std::string data = (tmp.path / "data").string();
  ads::test::Server server{data, ADS_AGENT_BIN, {}, "1", config(tmp, R"({"tls":{"mode":"on"}})")};
};

TEST_F(ServeTls, ServesHttpsWithAGeneratedCertificateTheCliTrusts) {
  ASSERT_EQ(server.base().rfind("https://127.0.0.1:", 0), 0u) << server.base();
  struct stat st {};
  ASSERT_EQ(::stat((data + "/tls/server.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  json list = server.call("GET", "/api/v1/deployments");  // a real handshake, trusting data/tls/server.crt
  EXPECT_TRUE(list.contains("deployments")) << list.dump();

  std::string out;
  EXPECT_EQ(ads({"list"}, out), 0) << out;  // the CLI finds the local server's certificate by itself
  std::string cacert = data + "/tls/server.crt";
  EXPECT_EQ(ads({"--cacert", cacert, "list"}, out), 0) << out;

  // `ads deploy` follows the deployment's event stream over TLS to its end
  // (a source that cannot be fetched: it fails before any machine is made)
  std::string missing = "file://" + tmp.str() + "/no-such-repo.git";
  EXPECT_EQ(ads({"deploy", missing}, out), 1) << out;
  EXPECT_NE(out.find("fetching"), std::string::npos) << out;
}

TEST_F(ServeTls, TheCliRefusesAServerItDoesNotTrustAndSaysWhy) {
  auto other = ads::http::tls::make_self_signed({"127.0.0.1"});
  ASSERT_TRUE(other.ok());
  std::string other_crt = (tmp.path / "other.crt").string();
  std::ofstream(other_crt) << other->cert_pem;
  std::string out;
  int rc = ads({"--cacert", other_crt, "list"}, out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("TLS"), std::string::npos) << out;
  EXPECT_NE(out.find("--cacert"), std::string::npos) << out;
  EXPECT_NE(out.find("other.crt"), std::string::npos) << out;

  // no local certificate to find (another data dir) and no --cacert: the system store refuses it
  std::vector<std::string> argv = {"env",          "ADS_DATA_DIR=" + tmp.str() + "/elsewhere",
                                   ADS_CLI_BIN,    "--server",
                                   server.base(),  "--token",
                                   server.token(), "list"};
  EXPECT_NE(ads::test::run(argv, &out), 0);
  EXPECT_NE(out.find("not trusted"), std::string::npos) << out;

  // plain HTTP to the HTTPS port: a 400 naming https, not a hang or garbage
  std::string plain = "http://" + server.base().substr(8);
  argv = {ADS_CLI_BIN, "--server", plain, "--token", server.token(), "list"};
  EXPECT_NE(ads::test::run(argv, &out), 0);
  EXPECT_NE(out.find("https://"), std::string::npos) << out;
}

TEST(ServeTlsConfig, AConfiguredCertificateIsUsedAndABrokenOneStopsTheStart) {
  ads::test::TempDir tmp;
  auto id = ads::http::tls::make_self_signed({"127.0.0.1"});
  ASSERT_TRUE(id.ok());
  std::string crt = (tmp.path / "mine.crt").string(), key = (tmp.path / "mine.key").string();
  std::ofstream(crt) << id->cert_pem;
  std::ofstream(key) << id->key_pem;
  {
    std::string cfg = (tmp.path / "a.json").string();
    std::ofstream(cfg) << json{{"tls", {{"cert", crt}, {"key", key}}}}.dump();
    ads::test::Server s((tmp.path / "a").string(), ADS_AGENT_BIN, {}, "1", cfg);
    ASSERT_EQ(s.base().rfind("https://", 0), 0u) << s.base();         // auto + a certificate: HTTPS on loopback too
    EXPECT_FALSE(fs::exists(tmp.path / "a" / "tls" / "server.key"));  // nothing generated
    s.ca_file = crt;
    json list = s.call("GET", "/api/v1/deployments");
    EXPECT_TRUE(list.contains("deployments")) << list.dump();
  }
  // a key that is not the certificate's: ads serve exits with a message naming tls.key
  auto other = ads::http::tls::make_self_signed({"127.0.0.1"});
  std::string other_key = (tmp.path / "other.key").string();
  std::ofstream(other_key) << other->key_pem;
  std::string cfg = (tmp.path / "b.json").string();
  std::ofstream(cfg) << json{{"tls", {{"cert", crt}, {"key", other_key}}}}.dump();
  std::string out;
  int rc = ads::test::run(
      {ADS_CLI_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", (tmp.path / "b").string(), "--config", cfg},
      &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("tls.key"), std::string::npos) << out;
}

TEST(ServiceTls, StartStatusStopAManagedServerWithTlsOn) {
  ads::test::TempDir tmp;
  // a free loopback port (`ads service` needs a fixed one to find its server)
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string port = std::to_string(ntohs(a.sin_port));
  ::close(fd);
  std::string cfg = (tmp.path / "ads.json").string();
  std::ofstream(cfg) << json{{"tls", {{"mode", "on"}}}, {"listen", "127.0.0.1:" + port}}.dump();
  std::string data = (tmp.path / "data").string();
  auto service = [&](const std::string& action, std::string& out) {
    return ads::test::run({ADS_CLI_BIN, "service", action, "--data-dir", data, "--config", cfg}, &out);
  };
  std::string out;
  struct Stop {  // stops it even when an assertion fails
    std::function<void()> f;
    ~Stop() { f(); }
  } stop{[&] {
    std::string o;
    service("stop", o);
  }};
  ASSERT_EQ(service("start", out), 0) << out;  // the certificate is made by this first start
  EXPECT_NE(out.find("https://127.0.0.1:" + port), std::string::npos) << out;
  EXPECT_EQ(service("status", out), 0) << out;
  EXPECT_NE(out.find("answering on https://"), std::string::npos) << out;
  EXPECT_EQ(service("stop", out), 0) << out;
  EXPECT_EQ(service("status", out), 3) << out;
}

}  // namespace
