// Integration test support: a real `ads serve` child process on a temp data
// dir, its REST API, and a guard that removes the containers a test made.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "http/client.h"
#include "providers/lxd/lxd_provider.h"
#include "support/build_paths.h"
#include "support/process.h"

namespace ads::test {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSource = ADS_SOURCE_DIR;

inline std::unique_ptr<ads::Provider> lxd() {
  auto p = ads::make_provider("lxd", json::object());
  return std::move(p.value());
}

// A file of an LXD container, read through LXD's file API (what a test
// checks, not through the provider); `status` gets LXD's answer (404: none).
inline std::string lxd_file(const std::string& machine, const std::string& path, long* status = nullptr) {
  ads::http::ClientRequest r;
  r.url = "http://lxd/1.0/instances/" + machine + "/files?path=" + path;
  r.unix_socket = "/var/lib/lxd/unix.socket";
  auto res = ads::http::request(r);
  if (status) *status = res ? res->status : 0;
  return res && res->status == 200 ? res->body : "";
}

// Removes every container a test's deployments made, even when it fails.
struct ContainerGuard {
  std::set<std::string> ids;
  ~ContainerGuard() {
    auto p = lxd();
    for (auto& id : ids) (void)p->destroy("ads-" + id);
  }
};

class Server {
 public:
  explicit Server(const std::string& data_dir, const std::string& agent = ADS_AGENT_BIN,
                  const std::vector<std::string>& env = {}, const std::string& workers = "2",
                  const std::string& config = "")
      : child_(argv(data_dir, agent, workers, config), env) {
    // "ads: listening on http(s)://..." (with TLS, a line about the certificate comes first)
    for (int i = 0; i < 4 && base_.empty(); ++i) {
      std::string line = child_.read_line();
      auto pos = line.find("listening on ");
      if (pos != std::string::npos) base_ = line.substr(pos + 13);
      if (line.empty()) break;
    }
    if (base_.rfind("https://", 0) == 0) ca_file = data_dir + "/tls/server.crt";
    std::ifstream in(data_dir + "/admin.token");  // written at first start, before it listens
    std::getline(in, token_);
  }
  const std::string& token() const { return token_; }
  // Another server's token (servers sharing one store share their users).
  void use_token(const std::string& t) { token_ = t; }
  std::vector<std::pair<std::string, std::string>> auth() const { return {{"Authorization", "Bearer " + token_}}; }
  const std::string& base() const { return base_; }
  std::string ca_file;  // https: the certificate the server made on first start
  // Ends the server with `sig` (SIGKILL: as a crash would).
  int kill(int sig) { return child_.kill_now(sig); }

  // Waits until a job has ended; returns it.
  json wait_job(const std::string& job_id, int seconds = 240) {
    json j;
    for (int i = 0; i < seconds * 4; ++i) {
      j = call("GET", "/api/v1/jobs/" + job_id);
      std::string st = j.value("state", "");
      if (st == "succeeded" || st == "failed" || st == "cancelled") return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ADD_FAILURE() << "job " << job_id << " stuck: " << j.dump();
    return j;
  }

  json call(const std::string& method, const std::string& path, const json* body = nullptr, long* status = nullptr) {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = base_ + path;
    r.ca_file = ca_file;
    r.headers = auth();
    if (body) {
      r.body = body->dump();
      r.headers.push_back({"Content-Type", "application/json"});
    }
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
    if (!res) return json();
    if (status) *status = res->status;
    return json::parse(res->body, nullptr, false);
  }

  // Waits until the deployment's state is one of `states`.
  json wait_for(const std::string& id, const std::set<std::string>& states, int seconds = 240) {
    json d;
    for (int i = 0; i < seconds * 4; ++i) {
      d = call("GET", "/api/v1/deployments/" + id);
      if (states.count(d.value("state", ""))) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ADD_FAILURE() << "deployment " << id << " stuck in " << d.dump();
    return d;
  }

  std::string log_text(const std::string& id) {
    std::string all;
    json l = call("GET", "/api/v1/deployments/" + id + "/logs?limit=10000");
    for (auto& line : l["lines"]) all += line.value("text", "") + "\n";
    return all;
  }

 private:
  static std::vector<std::string> argv(const std::string& data_dir, const std::string& agent,
                                       const std::string& workers, const std::string& config) {
    std::vector<std::string> a = {ADS_CLI_BIN, "serve",          "--listen", "127.0.0.1:0", "--data-dir",
                                  data_dir,    "--agent-binary", agent,      "--workers",   workers};
    if (!config.empty()) a.insert(a.end(), {"--config", config});
    return a;
  }
  Child child_;
  std::string base_;
  std::string token_;
};

// Makes a git repository from a lab folder, with a tag v1 and a branch main.
inline std::string make_repo(const TempDir& tmp, const std::string& lab_dir, const std::string& name) {
  fs::path repo = tmp.path / name;
  fs::copy(lab_dir, repo, fs::copy_options::recursive);
  std::string out;
  auto git = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "git", "-C", repo.string(), "-c", "user.name=ads-test", "-c", "user.email=ads@test.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    EXPECT_EQ(ads::test::run(argv, &out), 0) << out;
  };
  git({"init", "-q", "-b", "main"});
  git({"add", "-A"});
  git({"commit", "-q", "-m", "lab"});
  git({"tag", "v1"});
  return repo.string();
}

inline std::string http_get(const std::string& url) {
  ads::http::ClientRequest r;
  r.url = url;
  r.timeout_ms = 5000;
  auto res = ads::http::request(r);
  return res ? res->body : "";
}

// The fixture of tests that deploy through a real `ads serve` on real LXD:
// LXD must answer, the containers of the deployments made by deploy() are
// removed whatever happens, and an operation can be run to its job's end.
class LxdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ads::LxdProvider p({});
    if (!p.ping()) GTEST_FAIL() << "LXD is not running: run scripts/lxd-host.sh first";
  }
  // Runs an operation (POST .../ID/WHAT) and waits for its job.
  json op(Server& s, const std::string& id, const std::string& what, const json* body = nullptr) {
    long status = 0;
    json j = s.call("POST", "/api/v1/deployments/" + id + "/" + what, body, &status);
    EXPECT_EQ(status, 202) << what << ": " << j.dump();
    if (status != 202) return j;
    return s.wait_job(j["id"]);
  }
  // Asks for a deployment of `source` (named `name` unless empty); its id.
  std::string deploy(Server& s, const std::string& source, const std::string& name = "") {
    json req = {{"source", source}};
    if (!name.empty()) req["name"] = name;
    json d = s.call("POST", "/api/v1/deployments", &req);
    std::string id = d.value("id", "");
    guard.ids.insert(id);
    return id;
  }
  // A copy of an example lab (examples/labs/NAME) in a fresh directory.
  fs::path copy_of(const std::string& name) {
    fs::path dir = tmp.path / ("lab-" + std::to_string(++copies_));
    fs::copy(kSource + "/examples/labs/" + name, dir, fs::copy_options::recursive);
    return dir;
  }
  // A copy of an example lab whose ads-lab.json `edit` changed.
  std::string lab_with_spec(const std::string& name, const std::function<void(json&)>& edit) {
    fs::path dir = copy_of(name);
    json spec;
    {
      std::ifstream in(dir / "ads-lab.json");
      spec = json::parse(in);
    }
    edit(spec);
    std::ofstream(dir / "ads-lab.json", std::ios::trunc) << spec.dump(2);
    return dir.string();
  }
  TempDir tmp;
  ContainerGuard guard;
  int copies_ = 0;
};

}  // namespace ads::test
