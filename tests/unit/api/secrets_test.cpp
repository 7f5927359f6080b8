// Secrets never leak: a deploy through the real API (HTTPS on loopback), the
// real engine and the real openvz provider over SSH to the test host, with
// known secret values (the provider's SSH private key, two API tokens, a
// user's password, the deployment's agent secret). Then every log (the
// server's spdlog output, the deployment's log, the commands run on the
// host), every API answer and every file placed on the lab machine is
// searched for them. The agent secret is allowed in exactly one place: the
// agent's own config file on the machine, mode 0600.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/api.h"
#include "api/auth.h"
#include "engine/engine.h"
#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "http/tls_openssl.h"
#include "support/build_paths.h"
#include "support/openvz_engine.h"

namespace {
using nlohmann::json;
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.error(), "") << "test host";
    host.add_template("debian-12.0-x86_64-minimal");
    // everything the server logs, from now on
    sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(server_log);
    spdlog::default_logger()->sinks().push_back(sink);

    auto s = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(s.value());
    auto providers = ads::test::openvz_providers(host, ",\"start_command\":\"true\"");
    ASSERT_EQ(providers.size(), 1u);
    auto o = ads::test::openvz_engine_options(tmp.path);
    o.workers = 1;
    o.address_timeout = std::chrono::seconds(20);
    o.agent_timeout = std::chrono::milliseconds(500);  // no OpenVZ kernel: the agent never answers
    o.provider_attempts = 1;
    o.keep_failed = true;  // keep the machine's files to search them
    // the deployer deploys an example lab from this tree (non-admins: only inside local_roots)
    o.sources.policy.local_roots = {std::string(ADS_SOURCE_DIR) + "/examples/labs"};
    engine = std::make_unique<ads::Engine>(*store, std::move(providers), o);
    ASSERT_TRUE(engine->start().ok());

    auto id = ads::http::tls::make_self_signed({"127.0.0.1"});
    ASSERT_TRUE(id.ok());
    ca = (tmp.path / "ca.crt").string();
    std::ofstream(ca) << id->cert_pem;
    ads::http::ServerOptions so{"127.0.0.1", 0, 64 * 1024, 8, 5};
    so.tls_cert_pem = id->cert_pem;
    so.tls_backend = ads::http::openssl_tls;
    so.tls_key_pem = id->key_pem;
    server = std::make_unique<ads::http::Server>(so);
    auth = std::make_unique<ads::Auth>(*store);
    auto boot = auth->bootstrap();
    ASSERT_TRUE(boot.ok() && boot->has_value());
    admin_token = **boot;
    ads::register_api(*server, *store, *engine, *auth);
    ASSERT_TRUE(server->start().ok());
  }
  void TearDown() override {
    if (engine) engine->stop();
    if (server) server->stop();
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  }

  // Calls the API over HTTPS; every answer is kept for the search unless `keep` is false.
  json call(const std::string& tok, const std::string& method, const std::string& path, const json* body = nullptr,
            bool keep = true) {
    ads::http::ClientRequest r;
    r.method = method;
    r.url = "https://127.0.0.1:" + std::to_string(server->port()) + path;
    r.ca_file = ca;
    r.headers = {{"Authorization", "Bearer " + tok}};
    if (body) {
      r.body = body->dump();
      r.headers.push_back({"Content-Type", "application/json"});
    }
    auto res = ads::http::request(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
    if (!res) return json();
    if (keep) answers += method + " " + path + " -> " + std::to_string(res->status) + "\n" + res->body + "\n";
    return json::parse(res->body, nullptr, false);
  }

  ads::test::SshTestHost host;
  ads::test::TempDir tmp;
  std::ostringstream server_log;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink;
  std::unique_ptr<ads::Store> store;
  std::unique_ptr<ads::Engine> engine;
  std::unique_ptr<ads::http::Server> server;
  std::unique_ptr<ads::Auth> auth;
  std::string ca, admin_token, answers;
};

TEST_F(SecretsTest, NoSecretInLogsApiAnswersOrOnTheLabMachine) {
  // a deployer with a password and a token of its own (the token's one answer is not searched)
  const std::string password = "pw-0f3c9a1e-known-secret";
  json user = {{"name", "dora"}, {"role", "deployer"}, {"password", password}};
  call(admin_token, "POST", "/api/v1/users", &user);
  json tok_req = {{"name", "ci"}, {"user", "dora"}};
  json tok = call(admin_token, "POST", "/api/v1/tokens", &tok_req, false);
  ASSERT_TRUE(tok.contains("secret")) << tok.dump();
  std::string deployer_token = tok["secret"];

  json dep = {{"source", std::string(ADS_SOURCE_DIR) + "/examples/labs/static-site"}};
  json accepted = call(deployer_token, "POST", "/api/v1/deployments", &dep);
  ASSERT_TRUE(accepted.contains("id")) << accepted.dump();
  std::string id = accepted["id"];
  // follow the events to the end (a wait on the real deploy, not a timing check)
  json d;
  for (int i = 0; i < 1200; ++i) {
    d = call(deployer_token, "GET", "/api/v1/deployments/" + id, nullptr, false);
    if (d.value("state", "") == "failed" || d.value("state", "") == "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(d.value("state", ""), "failed") << d.dump();
  EXPECT_EQ(d.value("failed_step", ""), "starting_agent") << d.dump();  // it got as far as the machine

  // every read the API offers about it, by both callers
  for (const std::string& t : {admin_token, deployer_token}) {
    call(t, "GET", "/api/v1/deployments");
    call(t, "GET", "/api/v1/deployments/" + id);
    call(t, "GET", "/api/v1/deployments/" + id + "/logs?limit=10000");
    call(t, "GET", "/api/v1/deployments/" + id + "/jobs");
    call(t, "GET", "/api/v1/deployments/" + id + "/backups");
    call(t, "GET", "/api/v1/deployments/" + id + "/events?until=settled");
    call(t, "GET", "/api/v1/tokens");
    call(t, "GET", "/api/v1/whoami");
  }
  json jobs = call(admin_token, "GET",
                   "/api/v1/deployments/" + id + "/jobs");  // held: a loop over a temporary's member dangles
  for (auto& j : jobs["jobs"]) call(admin_token, "GET", "/api/v1/jobs/" + j.value("id", ""));
  call(admin_token, "GET", "/api/v1/users");
  call(admin_token, "GET", "/api/v1/audit");
  call(admin_token, "GET", "/api/v1/doctor");
  ASSERT_NE(answers.find("static address"), std::string::npos) << "the deployment's log was read:\n" << answers;

  auto rec = store->get(id);
  ASSERT_TRUE(rec.ok());
  const std::string agent_secret = rec->secret;
  ASSERT_EQ(agent_secret.size(), 64u);
  std::string key_text = slurp(host.client_key());
  ASSERT_NE(key_text.find("PRIVATE KEY"), std::string::npos);
  // the key's base64 lines (the header and footer are not secret)
  std::vector<std::string> secrets = {admin_token, deployer_token, password, agent_secret};
  std::istringstream key_lines(key_text);
  for (std::string line; std::getline(key_lines, line);)
    if (line.size() >= 40 && line.find("-----") == std::string::npos) secrets.push_back(line);
  ASSERT_GT(secrets.size(), 5u);

  std::string host_calls;
  for (auto& c : host.calls())
    for (auto& a : c) host_calls += a + " ";
  ASSERT_FALSE(host_calls.empty());
  std::string deploy_log;
  auto lines = store->logs(id, 0, 10000);
  ASSERT_TRUE(lines.ok());
  for (auto& l : *lines) deploy_log += l.text + "\n";
  spdlog::default_logger()->flush();
  // the places searched do hold what they should (the search is not of empty text)
  EXPECT_NE(server_log.str().find("deployment " + id + " failed at starting_agent"), std::string::npos)
      << server_log.str();
  EXPECT_NE(deploy_log.find("static address"), std::string::npos) << deploy_log;
  EXPECT_NE(host_calls.find("vzctl create"), std::string::npos) << host_calls;
  EXPECT_NE(answers.find("\"dora\""), std::string::npos);
  for (auto& s : secrets) {
    EXPECT_EQ(answers.find(s), std::string::npos) << "an API answer holds a secret";
    EXPECT_EQ(server_log.str().find(s), std::string::npos) << "the server log holds a secret";
    EXPECT_EQ(deploy_log.find(s), std::string::npos) << "the deployment log holds a secret";
    EXPECT_EQ(host_calls.find(s), std::string::npos) << "a command on the host holds a secret";
  }

  // the lab machine: every file placed in the container's root
  int files = 0;
  std::vector<std::string> holders;
  for (auto& e : fs::recursive_directory_iterator(host.state_dir(), fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::string text = slurp(e.path());
    for (size_t i = 0; i < secrets.size(); ++i) {
      if (text.find(secrets[i]) == std::string::npos) continue;
      if (secrets[i] == agent_secret) holders.push_back(e.path().string());
      else ADD_FAILURE() << e.path() << " holds secret #" << i;
    }
  }
  EXPECT_GT(files, 1);
  ASSERT_EQ(holders.size(), 1u) << "the agent secret is in its config file only";
  EXPECT_EQ(fs::path(holders[0]).filename(), "agent.json");
  struct stat st {};
  ASSERT_EQ(::stat(holders[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
