// Actions on a real agent (in-process, HTTPS on loopback) through the real
// client: whole output, cancel, heartbeats, the lab's own timeouts, backups.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <future>

#include "agent_fixture.h"
#include "engine/archive.h"

namespace {
using namespace ads::test::agent_fixture;
using Lines = std::vector<std::pair<std::string, std::string>>;
using nlohmann::json;

std::vector<std::string> of_stream(const Lines& lines, const std::string& stream) {
  std::vector<std::string> out;
  for (auto& [s, l] : lines)
    if (s == stream) out.push_back(l);
  return out;
}

// Waits for a future with a hang guard (never a timing assertion).
template <class T>
T get_within(std::future<T>& f, std::chrono::seconds guard, const char* what) {
  if (f.wait_for(guard) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not finish";
    std::abort();  // the thread still references this frame
  }
  return f.get();
}

bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string p, comm, state;
  if (!(stat >> p >> comm >> state)) return true;
  return state == "Z";  // dead, waiting for whoever inherited it
}

// Issue 14.3, end to end: 200 000 lines of an install step reach the client
// whole and in order (the tail, where the error usually is, included).
TEST_F(AgentTest, EveryLineOfALongInstallReachesTheClientInOrder) {
  restart_agent([](ads::agent::AgentConfig& c) { c.command_timeout_s = 600; });
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec_with(R"(["seq 1 200000","echo tail-error >&2; exit 7"])"))).ok());
  Lines lines;
  auto rc = c.run_action("install", [&](const std::string& s, const std::string& l) { lines.push_back({s, l}); });
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_EQ(*rc, 7);
  auto out = of_stream(lines, "stdout");
  ASSERT_EQ(out.size(), 200000u) << "last: " << (out.empty() ? "" : out.back());
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] != std::to_string(i + 1)) FAIL() << "line " << i + 1 << " is " << out[i];
  EXPECT_EQ(of_stream(lines, "stderr"), std::vector<std::string>{"tail-error"});
}

// Issue 14.4: a hung action can be cancelled; its process is gone and the
// agent takes the next action.
TEST_F(AgentTest, CancelStopsTheRunningActionAndTheAgentTakesTheNextOne) {
  restart_agent([](ads::agent::AgentConfig& c) {
    c.command_timeout_s = 3600;
    c.kill_grace_s = 1;
  });
  ads::agent::AgentClient c(base, kSecret);
  auto none = c.cancel();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "conflict") << none.error().message;  // nothing to cancel

  fs::path pidfile = tmp.path / "sleep.pid";
  // the second test ignores SIGTERM: only the SIGKILL after the grace ends it
  for (const std::string& cmd :
       {"echo $$ > " + pidfile.string() + "; echo started; exec sleep 100000",
        "trap '' TERM; echo $$ > " + pidfile.string() + "; echo started; sleep 100000; true"}) {
    SCOPED_TRACE(cmd);
    ASSERT_TRUE(
        c.upload_lab(lab_tarball(spec_with("[]", R"(,"test":[)" + json(cmd).dump() + R"(,"echo never"])"))).ok());
    std::promise<void> started;
    std::atomic<bool> once{false};
    Lines lines;
    auto run = std::async(std::launch::async, [&] {
      return c.run_action("test", [&](const std::string& s, const std::string& l) {
        lines.push_back({s, l});
        if (l == "started" && !once.exchange(true)) started.set_value();
      });
    });
    auto f = started.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    pid_t pid = 0;
    std::ifstream(pidfile) >> pid;
    ASSERT_GT(pid, 0);
    auto st = c.cancel();
    EXPECT_TRUE(st.ok()) << st.error().message;
    auto rc = get_within(run, std::chrono::seconds(60), "the cancelled action");
    ASSERT_FALSE(rc.ok()) << "exit " << *rc << " after: " << [&] {
      std::string all;
      for (auto& [s, l] : lines) all += s + ": " + l + "\n";
      return all;
    }();
    EXPECT_EQ(rc.error().code, "cancelled") << rc.error().message;
    EXPECT_TRUE(process_gone(pid)) << pid;
    for (auto& [s, l] : lines) EXPECT_NE(l, "never");  // the next command did not run
    // the agent is free again
    auto next = c.run_action("start", [](const std::string&, const std::string&) {});
    ASSERT_TRUE(next.ok()) << next.error().message;
    EXPECT_EQ(*next, 0);
    EXPECT_EQ(c.cancel().error().code, "conflict");
  }
}

// Issue 16.8: a command quiet for longer than the client's idle limit is not
// taken for a frozen agent: heartbeats keep the stream alive, and never
// reach the log as lines.
TEST_F(AgentTest, AQuietCommandKeepsItsStreamAliveWithHeartbeats) {
  restart_agent([](ads::agent::AgentConfig& c) {
    c.command_timeout_s = 60;
    c.heartbeat_s = 1;
  });
  ads::agent::AgentLimits limits;
  limits.idle_ms = 3000;
  ads::agent::AgentClient c(base, kSecret, limits);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec_with(R"(["sleep 7; echo woke"])"))).ok());
  Lines lines;
  auto rc = c.run_action("install", [&](const std::string& s, const std::string& l) { lines.push_back({s, l}); });
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(of_stream(lines, "stdout"), std::vector<std::string>{"woke"});
  for (auto& [s, l] : lines) EXPECT_EQ(l.find("heartbeat"), std::string::npos) << s << ": " << l;
}

// Issue 14.4: the lab's spec may ask for shorter command timeouts, never for
// more than the operator's maximum (the agent's command_timeout_s).
TEST_F(AgentTest, TheLabsOwnTimeoutsApplyWithinTheOperatorsMaximum) {
  ads::agent::AgentClient c(base, kSecret);  // operator maximum: 3 s
  auto spec = [](const std::string& timeouts) {
    return R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"],"test":["sleep 20"]},)"
           R"("timeouts":)" +
           timeouts + "}";
  };
  std::string all;
  auto sink = [&](const std::string&, const std::string& l) { all += l + "\n"; };
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec(R"({"test":"1s"})"))).ok());
  auto rc = c.run_action("test", sink);
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_NE(*rc, 0);
  EXPECT_NE(all.find("timed out after 1 s"), std::string::npos) << all;

  all.clear();
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec(R"({"test":"2h"})"))).ok());
  rc = c.run_action("test", sink);
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_NE(all.find("timeouts.test asks for 7200 s, more than the operator allows"), std::string::npos) << all;
  EXPECT_NE(all.find("timed out after 3 s"), std::string::npos) << all;

  // a bad value is refused at upload, naming the field
  auto bad = c.upload_lab(lab_tarball(spec(R"({"test":"soon"})")));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "timeouts.test");
}

// Issue 15.14: tar warns "socket ignored" (exit 0) for a socket in the backup
// directory; the warning went into the archive's stream and the backup was
// recorded as good, to fail only at restore.
TEST_F(AgentTest, ABackupDirectoryWithASocketGivesAValidArchive) {
  fs::path dir = tmp.path / "backup";
  fs::create_directories(dir);
  std::ofstream(dir / "data.txt") << "precious";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::string sock = (dir / "app.sock").string();
  ASSERT_LT(sock.size(), sizeof sa.sun_path);
  std::strcpy(sa.sun_path, sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ads::agent::AgentClient c(base, kSecret);
  auto data = c.download_backup();
  ::close(fd);
  ASSERT_TRUE(data.ok()) << data.error().message;
  auto v = ads::verify_tar_gz(*data);
  EXPECT_TRUE(v.ok()) << v.error().message;
  // and it holds the data: put back through the agent, it unpacks
  fs::remove_all(dir);
  ASSERT_TRUE(c.upload_backup(*data).ok());
  std::ifstream in(dir / "data.txt");
  std::string back;
  in >> back;
  EXPECT_EQ(back, "precious");
}

TEST_F(AgentTest, ABackupLargerThanTheClientsLimitIsRefused) {
  fs::path dir = tmp.path / "backup";
  fs::create_directories(dir);
  std::string random;
  ASSERT_EQ(ads::test::run({"head", "-c", "300000", "/dev/urandom"}, &random), 0);  // does not compress
  std::ofstream(dir / "blob", std::ios::binary) << random;
  ads::agent::AgentClient c(base, kSecret);
  auto small = c.download_backup(100000);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code, "too_large") << small.error().message;
  EXPECT_NE(small.error().message.find("100000 bytes"), std::string::npos) << small.error().message;
  EXPECT_TRUE(c.download_backup(1u << 20).ok());
}

}  // namespace

namespace {

// The agent keeps the archive of the last lab uploaded, as it came, for the
// controller's later playbook actions (GET /v1/lab); a refused upload leaves
// the kept one as it was.
TEST_F(AgentTest, TheLastLabUploadedIsKeptAsItCameAndGivenBack) {
  ads::agent::AgentClient c(base, kSecret);
  auto none = c.download_lab();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found") << none.error().message;

  const std::string v1 = lab_tarball(spec_with("[]"), {{"playbooks/site.yml", "v1"}});
  ASSERT_TRUE(c.upload_lab(v1).ok());
  auto back = c.download_lab();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, v1);  // byte for byte
  const std::string v2 = lab_tarball(spec_with("[]"), {{"playbooks/site.yml", "v2"}});
  ASSERT_TRUE(c.upload_lab(v2).ok());
  EXPECT_EQ(*c.download_lab(), v2);
  // kept root-only, beside the lab's directory
  auto perms = fs::status(tmp.path / "lab.tar.gz").permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);

  // refused uploads (not an archive; an archive without a spec) keep v2
  EXPECT_FALSE(c.upload_lab("not a tar.gz").ok());
  EXPECT_FALSE(c.upload_lab(lab_tarball("{\"ads\":2,")).ok());
  EXPECT_EQ(*c.download_lab(), v2);
  EXPECT_FALSE(fs::exists(tmp.path / "lab.tar.gz.partial"));

  // past the client's limit: refused, not cut
  auto small = c.download_lab(v2.size() - 1);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code, "too_large") << small.error().message;
  // and only for a signed request
  EXPECT_EQ(raw_status("GET", "/v1/lab", {}), 401);
}

// An archive the agent cannot keep (here: a directory stands where it goes)
// does not fail the upload: the lab is in place, GET /v1/lab says it holds
// none (the controller then fetches the source again), and no part-written
// file is left.
TEST_F(AgentTest, AnArchiveThatCannotBeKeptLeavesTheUploadGoodAndSaysNone) {
  fs::create_directories(tmp.path / "lab.tar.gz" / "in-the-way");
  ads::agent::AgentClient c(base, kSecret);
  auto up = c.upload_lab(lab_tarball(spec_with("[]"), {{"playbooks/site.yml", "v1"}}));
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_TRUE(fs::exists(tmp.path / "lab" / "playbooks" / "site.yml"));
  auto kept = c.download_lab();
  ASSERT_FALSE(kept.ok());
  EXPECT_EQ(kept.error().code, "not_found") << kept.error().message;
  EXPECT_FALSE(fs::exists(tmp.path / "lab.tar.gz.partial"));
}

}  // namespace
