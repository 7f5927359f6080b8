// Issue 14.9 at the engine: a lab that prints 120,000 lines (12 MB) in one
// job leaves a store of a few MB: the job's log keeps its head and its tail
// and a line says what was cut. A real agent (in-process, loopback, TLS) runs
// the lab's test action; the store is a real SQLite file.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/engine.h"
#include "support/engine_wait.h"
#include "support/switch_provider.h"
#include "unit/agent/agent_fixture.h"

namespace {
namespace fs = std::filesystem;
using ads::test::agent_fixture::AgentTest;
using ads::test::agent_fixture::kSecret;
using nlohmann::json;

class EngineLogCap : public AgentTest {};

uintmax_t size_of(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

TEST_F(EngineLogCap, ALabPrintingWithoutEndLeavesAStoreOfBoundedSize) {
  restart_agent([](ads::agent::AgentConfig& c) { c.command_timeout_s = 120; });
  // 120,000 lines of 100 bytes (12 MB) on stdout, then a last line on stderr
  const std::string test_cmd =
      "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456 "
      "| head -n 120000; echo the-very-end >&2";
  std::string spec = R"({"ads":2,"os":{"name":"debian","version":"12"},"install":["true"],)"
                     R"("actions":{"start":["true"],"test":[")" +
                     test_cmd + R"("]}})";
  ads::agent::AgentClient client(base, kSecret);
  ASSERT_TRUE(client.upload_lab(lab_tarball(spec)).ok());

  fs::path db = tmp.path / "ads.db";
  auto st = ads::open_store("sqlite://" + db.string());
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto store = std::move(st.value());
  ads::Deployment d = ads::test::lab_record("01m88rqkev9cbfs1eqysk664n0", ads::State::kRunning);
  d.address = "127.0.0.1";
  d.secret = kSecret;
  d.spec_json = json{{"path", "ads-lab.json"}, {"text", spec}}.dump();
  ASSERT_TRUE(store->create(d).ok());

  std::map<std::string, std::unique_ptr<ads::Provider>> providers;
  providers["switch"] = std::make_unique<ads::test::SwitchProvider>(std::make_shared<ads::test::SwitchState>());
  auto opts = ads::test::engine_options(tmp.path);
  opts.default_provider = "switch";
  opts.agent_port = server->port();
  opts.http_check_timeout = std::chrono::milliseconds(1);  // no lab answers HTTP here; the test action is the point
  opts.log_cap = {.head_bytes = 256u << 10, .tail_bytes = 64u << 10, .line_bytes = 8192};
  ads::Engine engine(*store, std::move(providers), opts);
  ASSERT_TRUE(engine.start().ok());
  auto job = engine.operate(d.id, "test");
  ASSERT_TRUE(job.ok()) << job.error().message;
  ads::test::settle(*store, d.id);
  engine.stop();

  auto done = store->get_job(job->id);
  ASSERT_TRUE(done.ok());
  auto result = json::parse(done->result_json, nullptr, false);
  ASSERT_TRUE(result.is_object()) << done->result_json;
  EXPECT_EQ(result["test_exit_code"], 0) << done->result_json;  // the whole output was read, the action ended well

  std::string log = ads::test::log_of(*store, d.id, 1000000);
  EXPECT_NE(log.find("lines ("), std::string::npos);
  EXPECT_NE(log.find("of output cut here"), std::string::npos);
  EXPECT_NE(log.find("the-very-end"), std::string::npos) << "the tail was lost";
  EXPECT_NE(log.find("test failed"), std::string::npos);  // the engine's own lines all stay
  auto lines = store->logs(d.id, 0, 1000000);
  ASSERT_TRUE(lines.ok());
  EXPECT_LT(lines->size(), 10000u);
  // 12 MB of output; the file and its write-ahead log stay at a few MB
  uintmax_t bytes = size_of(db) + size_of(db.string() + "-wal");
  EXPECT_LT(bytes, 6u << 20) << "ads.db and its WAL hold " << bytes << " bytes";
}

}  // namespace
