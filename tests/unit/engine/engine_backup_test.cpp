// Issue 15.14 at the engine: a backup whose archive does not read back whole
// fails and leaves nothing (no archive file, no backup record). The agent is
// what a lab's root could put in its place (it has the deployment's key):
// it answers GET /v1/backup with tar's warning in front of a real .tar.gz,
// exactly what the old agent sent for a backup directory holding a socket.
// The verification comes before any provider call, so the LXD provider here
// points at a socket where no LXD listens.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/identity.h"
#include "engine/engine.h"
#include "http/server.h"
#include "http/tls_mbedtls.h"
#include "providers/provider.h"
#include "support/engine_wait.h"
#include "support/process.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSecret(64, 'b');

TEST(EngineBackup, AnArchiveThatDoesNotReadBackWholeFailsTheBackupAndLeavesNothing) {
  ads::test::TempDir tmp;
  // a real .tar.gz, with tar's warning in front of it
  fs::create_directories(tmp.path / "data");
  std::ofstream(tmp.path / "data" / "db.dump") << "rows";
  std::string log;
  ASSERT_EQ(
      ads::test::run({"tar", "-czf", (tmp.path / "b.tgz").string(), "-C", (tmp.path / "data").string(), "."}, &log), 0)
      << log;
  std::ifstream in(tmp.path / "b.tgz", std::ios::binary);
  std::string tgz((std::istreambuf_iterator<char>(in)), {});
  std::string corrupt = "tar: ./app.sock: socket ignored\n" + tgz;

  ads::http::ServerOptions so;
  so.host = "127.0.0.1";
  auto id = ads::agent::agent_identity(kSecret);
  ASSERT_TRUE(id.ok());
  so.tls_cert_pem = id->cert_pem;
  so.tls_backend = ads::http::mbedtls_tls;
  so.tls_key_pem = id->key_pem;
  ads::http::Server agent(so);
  agent.route("GET", "/v1/backup", [&](ads::http::Request&) {
    ads::http::Response r;
    r.content_type = "application/gzip";
    r.body = corrupt;
    return r;
  });
  ASSERT_TRUE(agent.start().ok());

  auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto store = std::move(st.value());
  std::map<std::string, std::unique_ptr<ads::Provider>> providers;
  auto lxd = ads::make_provider("lxd", json{{"socket", (tmp.path / "no-lxd.sock").string()}});
  ASSERT_TRUE(lxd.ok()) << lxd.error().message;
  providers["lxd"] = std::move(lxd.value());
  auto opts = ads::test::engine_options(tmp.path);
  opts.agent_port = agent.port();
  ads::Engine engine(*store, std::move(providers), opts);
  ASSERT_TRUE(engine.start().ok());

  ads::Deployment d = ads::test::lab_record("01m88rqkev9cbfs1eqysk664kb", ads::State::kRunning, "lxd");
  d.address = "127.0.0.1";
  d.secret = kSecret;
  // a lab without a backup action: the engine goes straight to the download
  d.spec_json = json{{"path", "ads-lab.json"},
                     {"text", R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"]}})"}}
                    .dump();
  ASSERT_TRUE(store->create(d).ok());
  auto job = engine.operate(d.id, "backup");
  ASSERT_TRUE(job.ok()) << job.error().message;
  ads::test::settle(*store, d.id);
  engine.stop();

  auto jobs = store->jobs_of(d.id);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().state, "failed");
  EXPECT_NE(jobs->front().error.find("not a usable archive"), std::string::npos) << jobs->front().error;
  EXPECT_NE(jobs->front().error.find("not gzip-compressed"), std::string::npos) << jobs->front().error;
  auto backups = store->backups_of(d.id);
  ASSERT_TRUE(backups.ok());
  EXPECT_TRUE(backups->empty());
  std::error_code ec;
  fs::path dir = fs::path(opts.backup_dir) / d.id;
  EXPECT_TRUE(!fs::exists(dir, ec) || fs::is_empty(dir, ec)) << "an archive was left in " << dir;
  EXPECT_EQ(store->get(d.id)->state, ads::State::kRunning);  // a failed backup leaves the lab as it was
}

}  // namespace
