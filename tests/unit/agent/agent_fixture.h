// The agent in-process on loopback (HTTPS with its derived key) and helpers
// to build lab archives, shared by the agent's test files.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "agent/client.h"
#include "agent/identity.h"
#include "agent/protocol.h"
#include "agent/server.h"
#include "http/client.h"
#include "support/process.h"

namespace ads::test::agent_fixture {
namespace fs = std::filesystem;
inline const std::string kSecret(64, 'k');

// A .tar.gz with one file under an arbitrary member name (GNU tar would
// strip a leading "../"; libarchive writes what it is told).
inline std::string tar_gz_with_member(const std::string& name) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* ud, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(ud)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, 1);
  archive_write_header(a, e);
  archive_write_data(a, "x", 1);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = ads::agent::agent_pin(kSecret);
    ASSERT_TRUE(p.ok()) << p.error().message;
    pin = *p;
    restart_agent([](ads::agent::AgentConfig&) {});
  }

  // The agent's config in this fixture: loopback, any port, a 3 s command
  // timeout, lab and backup directories in tmp.
  ads::agent::AgentConfig config() {
    ads::agent::AgentConfig cfg;
    cfg.secret = kSecret;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.lab_dir = (tmp.path / "lab").string();
    cfg.backup_dir = (tmp.path / "backup").string();
    cfg.command_timeout_s = 3;
    cfg.ssh.dir = (tmp.path / "ssh").string();  // never the host's /etc/ads-agent
    return cfg;
  }

  // Replaces the agent by one whose config() `change` has adjusted.
  void restart_agent(const std::function<void(ads::agent::AgentConfig&)>& change) {
    if (server) server->stop();
    auto cfg = config();
    change(cfg);
    server = std::make_unique<ads::agent::AgentServer>(cfg);
    ASSERT_TRUE(server->start().ok());
    base = "https://127.0.0.1:" + std::to_string(server->port());
  }

  // A .tar.gz of a lab whose ads-lab.json is `spec` (plus extra files).
  std::string lab_tarball(const std::string& spec, const std::map<std::string, std::string>& files = {}) {
    fs::path src = tmp.path / ("src" + std::to_string(n_++));
    fs::create_directories(src);
    std::ofstream(src / "ads-lab.json") << spec;
    for (auto& [k, v] : files) {
      fs::create_directories((src / k).parent_path());
      std::ofstream(src / k) << v;
    }
    std::string out;
    fs::path tgz = tmp.path / ("lab" + std::to_string(n_) + ".tgz");
    EXPECT_EQ(ads::test::run({"tar", "-czf", tgz.string(), "-C", src.string(), "."}, &out), 0) << out;
    std::ifstream in(tgz, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  std::string spec_with(const std::string& install, const std::string& extra_actions = "") {
    return R"({"ads":2,"os":{"name":"debian","version":"12"},"install":)" + install +
           R"(,"actions":{"start":["true"])" + extra_actions + "}}";
  }

  long raw_status(const std::string& method, const std::string& target,
                  std::vector<std::pair<std::string, std::string>> headers, const std::string& body = "") {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = base + target;
    r.headers = std::move(headers);
    r.body = body;
    r.pinned_key = pin;  // a real TLS handshake with the agent's derived key
    auto res = ads::http::request(r);
    return res ? res->status : -1;
  }

  ads::test::TempDir tmp;
  std::unique_ptr<ads::agent::AgentServer> server;
  std::string base;
  std::string pin;
  int n_ = 0;
};

}  // namespace ads::test::agent_fixture
