// The openvz provider over real SSH (Debian's sshd in a network namespace)
// against the vzctl/vzlist stand-ins, which record their argv: the tests
// assert on exactly what reached the host. No OpenVZ kernel is involved.
#include "providers/openvz/openvz_provider.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>

#include "providers/openvz/ssh.h"
#include "support/ssh_host.h"

namespace {
using nlohmann::json;
using Argv = std::vector<std::string>;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class OpenvzProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.error(), "") << "test host";
    host.add_template("centos-6-x86_64");
    host.add_template("debian-12.0-x86_64-minimal");
    auto p = ads::make_provider("openvz",
                                json::parse(host.settings_json(",\"templates\":{\"centos-6\":\"centos-6-x86_64\","
                                                               "\"debian-12\":\"debian-12.0-x86_64-minimal\"},"
                                                               "\"start_command\":\"echo started >> agent-started\"")));
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    provider = std::move(p.value());
  }
  ads::openvz::SshTarget target() const {
    ads::openvz::SshTarget t;
    t.host = host.host();
    t.port = host.port();
    t.private_key = host.client_key();
    t.known_hosts = host.known_hosts();
    t.connect_timeout_s = 5;
    return t;
  }
  ads::MachineSpec spec(const std::string& name, const std::string& address) {
    ads::MachineSpec s;
    s.name = name;
    s.os_key = "centos-6";
    s.memory_mb = 1024;
    s.storage_mb = 4096;
    s.address = address;
    s.labels = {{"deployment", name.substr(4)}, {"lab", "it's \"my\" lab; $(reboot)"}};
    s.files = {{"/usr/local/bin/ads-agent",
                std::string("\x7f"
                            "ELF\0binary",
                            10),
                0755},
               {"/etc/ads-agent/agent.json", "{\"secret\":\"s\"}", 0600}};
    return s;
  }
  std::string ip(int last) const { return host.subnet().substr(0, host.subnet().size() - 4) + std::to_string(last); }

  ads::test::SshTestHost host;
  std::unique_ptr<ads::Provider> provider;
};

TEST_F(OpenvzProviderTest, FullLifeCycleSendsExactlyTheseCommands) {
  std::vector<std::string> progress;
  auto s = spec("ads-01jlife", ip(2));
  auto st = provider->create(s, [&](const std::string& m) { progress.push_back(m); });
  ASSERT_TRUE(st.ok()) << st.error().message;
  std::string gw = ip(1);
  std::string root = (host.state_dir() / "root").string();
  std::vector<Argv> want = {
      {"vzlist", "-a", "-H", "-o", "ctid,status,name,description,ip"},
      {"vzctl", "create", "1002", "--ostemplate", "centos-6-x86_64"},
      {"vzctl",
       "set",
       "1002",
       "--name",
       "ads-01jlife",
       "--hostname",
       "ads-01jlife",
       "--ipadd",
       ip(2),
       "--nameserver",
       gw,
       "--ram",
       "1024M",
       "--swap",
       "512M",
       "--diskspace",
       "4096M:4096M",
       "--description",
       ads::OpenvzProvider::encode_labels(s.labels),
       "--save"},
      {"vzctl", "mount", "1002"},
      {"vzctl", "umount", "1002"},
  };
  EXPECT_EQ(host.calls(), want);
  ASSERT_FALSE(progress.empty());
  EXPECT_NE(progress[0].find("CTID 1002"), std::string::npos) << progress[0];

  // the files landed in the container's private area, with their modes
  auto priv = host.state_dir() / "ct" / "1002" / "private";
  EXPECT_EQ(slurp(priv / "usr/local/bin/ads-agent"), s.files[0].content);
  EXPECT_EQ(slurp(priv / "etc/ads-agent/agent.json"), s.files[1].content);
  struct stat sb {};
  ASSERT_EQ(stat((priv / "usr/local/bin/ads-agent").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0755u);
  ASSERT_EQ(stat((priv / "etc/ads-agent/agent.json").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0600u);

  auto m = provider->inspect("ads-01jlife");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->status, "Stopped");
  EXPECT_EQ(m->address, "");
  EXPECT_EQ(m->labels, s.labels);  // the hostile lab label came back intact

  host.clear_calls();
  ASSERT_TRUE(provider->start("ads-01jlife").ok());
  EXPECT_EQ(host.calls_of("vzctl"), (std::vector<Argv>{{"vzctl", "start", "1002"},
                                                       {"vzctl", "exec2", "1002", "echo started >> agent-started"}}));
  EXPECT_EQ(slurp(priv / "agent-started"), "started\n");
  auto addr = provider->wait_address("ads-01jlife", std::chrono::seconds(10));
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  EXPECT_EQ(*addr, ip(2));

  // starting a running container only runs the start command again
  host.clear_calls();
  ASSERT_TRUE(provider->start("ads-01jlife").ok());
  EXPECT_EQ(host.calls_of("vzctl"), (std::vector<Argv>{{"vzctl", "exec2", "1002", "echo started >> agent-started"}}));

  auto all = provider->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "ads-01jlife");
  EXPECT_EQ((*all)[0].status, "Running");
  EXPECT_EQ((*all)[0].labels.at("deployment"), "01jlife");

  host.clear_calls();
  ASSERT_TRUE(provider->stop("ads-01jlife").ok());
  ASSERT_TRUE(provider->stop("ads-01jlife").ok());  // already stopped: nothing sent
  EXPECT_EQ(host.calls_of("vzctl"), (std::vector<Argv>{{"vzctl", "stop", "1002"}}));
  EXPECT_EQ(provider->inspect("ads-01jlife")->status, "Stopped");

  host.clear_calls();
  ASSERT_TRUE(provider->destroy("ads-01jlife").ok());
  EXPECT_EQ(host.calls_of("vzctl"), (std::vector<Argv>{{"vzctl", "destroy", "1002"}}));
  EXPECT_FALSE(std::filesystem::exists(host.state_dir() / "ct" / "1002"));
  EXPECT_TRUE(provider->destroy("ads-01jlife").ok());  // already gone
  auto gone = provider->inspect("ads-01jlife");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "not_found");
  EXPECT_EQ(provider->start("ads-01jlife").error().code, "not_found");
  EXPECT_EQ(provider->stop("ads-01jlife").error().code, "not_found");
  auto none = provider->list();
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TEST_F(OpenvzProviderTest, DestroyStopsARunningContainerFirst) {
  ASSERT_TRUE(provider->create(spec("ads-01jrun", ip(3)), nullptr).ok());
  ASSERT_TRUE(provider->start("ads-01jrun").ok());
  host.clear_calls();
  ASSERT_TRUE(provider->destroy("ads-01jrun").ok());
  EXPECT_EQ(host.calls_of("vzctl"), (std::vector<Argv>{{"vzctl", "stop", "1003"}, {"vzctl", "destroy", "1003"}}));
}

TEST_F(OpenvzProviderTest, ExistingNameOrCtidIsAConflictAndNothingIsTouched) {
  ASSERT_TRUE(provider->create(spec("ads-01jone", ip(4)), nullptr).ok());
  host.clear_calls();
  auto again = provider->create(spec("ads-01jone", ip(5)), nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "conflict");
  EXPECT_TRUE(host.calls_of("vzctl").empty()) << "no vzctl call for a name in use";

  // a CTID made by someone else (vzctl: exit 44, "Private area already exists")
  std::filesystem::create_directories(host.state_dir() / "ct" / "1006" / "private");
  auto taken = provider->create(spec("ads-01jtwo", ip(6)), nullptr);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, "conflict");
  EXPECT_NE(taken.error().message.find("Private area already exists"), std::string::npos) << taken.error().message;
  EXPECT_TRUE(std::filesystem::exists(host.state_dir() / "ct" / "1006" / "private"));
}

TEST_F(OpenvzProviderTest, VzctlFailuresCarryItsExitCodeAndMessage) {
  auto p = ads::make_provider(
      "openvz", json::parse(host.settings_json(",\"templates\":{\"centos-6\":\"centos-6; touch /tmp/ads-pwned\"}")));
  ASSERT_TRUE(p.ok());
  auto st = (*p)->create(spec("ads-01jtmpl", ip(7)), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "failed");
  EXPECT_NE(st.error().message.find("exited with 47"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("centos-6; touch /tmp/ads-pwned.tar.gz not found"), std::string::npos)
      << st.error().message;
  // the hostile template name arrived as one argument
  EXPECT_EQ(host.calls_of("vzctl"),
            (std::vector<Argv>{{"vzctl", "create", "1007", "--ostemplate", "centos-6; touch /tmp/ads-pwned"}}));
  EXPECT_FALSE(std::filesystem::exists("/tmp/ads-pwned"));
}

TEST_F(OpenvzProviderTest, BadSpecsAreRefusedBeforeConnecting) {
  auto s = spec("ads-01jbad", ip(8));
  s.os_key = "windows-95";
  auto os = provider->create(s, nullptr);
  ASSERT_FALSE(os.ok());
  EXPECT_EQ(os.error().code, "invalid");
  EXPECT_EQ(os.error().field, "os");
  s = spec("ads-01jbad", "");
  auto noaddr = provider->create(s, nullptr);
  ASSERT_FALSE(noaddr.ok());
  EXPECT_EQ(noaddr.error().field, "address");
  s = spec("ads-01jbad", "192.0.2.9");
  EXPECT_EQ(provider->create(s, nullptr).error().field, "address");
  s = spec("Bad Name; x", ip(8));
  EXPECT_EQ(provider->create(s, nullptr).error().field, "name");
  EXPECT_EQ(provider->start("../etc").error().field, "name");
  s = spec("ads-01jbad", ip(8));
  s.files = {{"/etc/../../escape", "x", 0644}};
  auto esc = provider->create(s, nullptr);
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(esc.error().field, "path");
  EXPECT_TRUE(host.calls().empty()) << "nothing sent for a refused spec";
}

TEST_F(OpenvzProviderTest, HostileFilePathsLandExactlyWhereNamed) {
  auto s = spec("ads-01jpath", ip(10));
  std::string odd = "/opt/it's \"odd\" $(touch /tmp/ads-pwned);`id` dir/f*le\nname";
  s.files = {{odd, "payload", 0640}};
  auto st = provider->create(s, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto priv = host.state_dir() / "ct" / "1010" / "private";
  EXPECT_EQ(slurp(priv / odd.substr(1)), "payload");
  struct stat sb {};
  ASSERT_EQ(stat((priv / odd.substr(1)).c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0640u);
  EXPECT_FALSE(std::filesystem::exists("/tmp/ads-pwned"));
  EXPECT_TRUE(provider->destroy("ads-01jpath").ok());
}

TEST_F(OpenvzProviderTest, HostileArgvArrivesAsSingleArguments) {
  auto s = ads::openvz::SshSession::connect(target());
  ASSERT_TRUE(s.ok()) << s.error().message;
  Argv argv = {"vzctl", "status",   "101",  "$(touch /tmp/ads-pwned)",
               "it's",  "a b",      "a\nb", ";",
               "|",     "*",        "",     "--",
               "-e",    "\"q\"",    "`id`", "~",
               "\\",    "ads-01j'x"};
  auto r = (*s)->run(argv, "", std::chrono::seconds(30));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "CTID 101 deleted unmounted down\n");
  EXPECT_EQ(host.calls(), (std::vector<Argv>{argv}));
  EXPECT_FALSE(std::filesystem::exists("/tmp/ads-pwned"));
}

TEST_F(OpenvzProviderTest, CommandsGetStdinAndExitCodes) {
  auto s = ads::openvz::SshSession::connect(target());
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto r = (*s)->run({"sh", "-c", "cat; echo err >&2; exit 3"}, "from stdin\n", std::chrono::seconds(30));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "from stdin\n");
  EXPECT_EQ(r->err, "err\n");
  auto nul = (*s)->run({"echo", std::string("a\0b", 3)}, "", std::chrono::seconds(5));
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.error().code, "invalid");
  auto slow = (*s)->run({"sleep", "30"}, "", std::chrono::milliseconds(300));
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, "timeout");
}

TEST_F(OpenvzProviderTest, UnknownHostKeyIsRefused) {
  std::ofstream(host.known_hosts(), std::ios::trunc) << "";
  auto s = ads::openvz::SshSession::connect(target());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "failed");
  EXPECT_NE(s.error().message.find("is not in " + host.known_hosts()), std::string::npos) << s.error().message;
  // and through the provider
  auto m = provider->inspect("ads-01jx");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("host key"), std::string::npos);
  EXPECT_TRUE(host.calls().empty()) << "nothing ran on an unverified host";
}

TEST_F(OpenvzProviderTest, ChangedHostKeyIsRefused) {
  // known_hosts names another ed25519 key for this host:port
  std::string other = (host.dir() / "other_key").string();
  ASSERT_EQ(ads::test::run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other}), 0);
  std::ifstream in(other + ".pub");
  std::string type, b64;
  in >> type >> b64;
  std::ofstream(host.known_hosts(), std::ios::trunc)
      << "[" << host.host() << "]:" << host.port() << " " << type << " " << b64 << "\n";
  auto s = ads::openvz::SshSession::connect(target());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "failed");
  EXPECT_NE(s.error().message.find("CHANGED"), std::string::npos) << s.error().message;
  EXPECT_TRUE(host.calls().empty());
}

TEST_F(OpenvzProviderTest, WrongClientKeyOrMissingKeyIsRefused) {
  auto t = target();
  std::string other = (host.dir() / "stranger").string();
  ASSERT_EQ(ads::test::run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other}), 0);
  t.private_key = other;
  auto s = ads::openvz::SshSession::connect(t);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "failed");
  EXPECT_NE(s.error().message.find("refused the key"), std::string::npos) << s.error().message;
  t.private_key = (host.dir() / "no-such-key").string();
  auto m = ads::openvz::SshSession::connect(t);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("cannot read the private key"), std::string::npos) << m.error().message;
}

TEST_F(OpenvzProviderTest, SnapshotIsAVzdumpArchiveAndRestoreBringsTheContainerBack) {
  auto s = spec("ads-01jsnap", ip(9));
  ASSERT_TRUE(provider->create(s, nullptr).ok());
  ASSERT_TRUE(provider->start("ads-01jsnap").ok());
  auto priv = host.state_dir() / "ct" / "1009" / "private";
  std::ofstream(priv / "data.txt") << "alpha";
  host.clear_calls();
  auto st = provider->snapshot("ads-01jsnap", "backup-01jb");
  ASSERT_TRUE(st.ok()) << st.error().message;
  std::string dir = (host.state_dir() / "dump" / "ads-01jsnap" / "backup-01jb").string();
  EXPECT_EQ(host.calls_of("vzdump"),
            (std::vector<Argv>{{"vzdump", "--compress", "--suspend", "--dumpdir", dir, "1009"}}));
  std::vector<std::string> archives;
  for (auto& e : std::filesystem::directory_iterator(dir)) archives.push_back(e.path().string());
  ASSERT_EQ(archives.size(), 1u);
  EXPECT_EQ(std::filesystem::path(archives[0]).filename().string().rfind("vzdump-openvz-1009-", 0), 0u);

  auto dup = provider->snapshot("ads-01jsnap", "backup-01jb");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "conflict");

  std::ofstream(priv / "data.txt", std::ios::trunc) << "beta";
  host.clear_calls();
  st = provider->restore_snapshot("ads-01jsnap", "backup-01jb");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(host.calls_of("vzctl"), (std::vector<Argv>{{"vzctl", "stop", "1009"}, {"vzctl", "destroy", "1009"}}));
  EXPECT_EQ(host.calls_of("vzrestore"), (std::vector<Argv>{{"vzrestore", archives[0], "1009"}}));
  EXPECT_EQ(slurp(priv / "data.txt"), "alpha");
  auto m = provider->inspect("ads-01jsnap");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->status, "Stopped");
  EXPECT_EQ(m->labels, s.labels);  // the config came back with the archive

  auto none = provider->restore_snapshot("ads-01jsnap", "backup-nope");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found");
  EXPECT_EQ(provider->snapshot("ads-01jnobody", "backup-x").error().code, "not_found");
  EXPECT_EQ(provider->snapshot("ads-01jsnap", "../../etc").error().code, "invalid");
  EXPECT_EQ(provider->restore_snapshot("ads-01jsnap", "a b").error().code, "invalid");
  ASSERT_TRUE(provider->destroy("ads-01jsnap").ok());
}

TEST_F(OpenvzProviderTest, DeletingASnapshotRemovesItsArchivesAlsoAfterTheContainerIsGone) {
  auto s = spec("ads-01jdel", ip(10));
  ASSERT_TRUE(provider->create(s, nullptr).ok());
  ASSERT_TRUE(provider->snapshot("ads-01jdel", "backup-1").ok());
  ASSERT_TRUE(provider->snapshot("ads-01jdel", "backup-2").ok());
  auto dump = host.state_dir() / "dump" / "ads-01jdel";
  ASSERT_TRUE(std::filesystem::exists(dump / "backup-1"));
  auto st = provider->delete_snapshot("ads-01jdel", "backup-1");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_FALSE(std::filesystem::exists(dump / "backup-1"));
  EXPECT_FALSE(std::filesystem::is_empty(dump / "backup-2"));
  EXPECT_EQ(provider->restore_snapshot("ads-01jdel", "backup-1").error().code, "not_found");
  // vzdump archives stay on the host after vzctl destroy, until deleted
  ASSERT_TRUE(provider->destroy("ads-01jdel").ok());
  ASSERT_TRUE(std::filesystem::exists(dump / "backup-2"));
  ASSERT_TRUE(provider->delete_snapshot("ads-01jdel", "backup-2").ok());
  EXPECT_FALSE(std::filesystem::exists(dump / "backup-2"));
  EXPECT_TRUE(provider->delete_snapshot("ads-01jdel", "backup-2").ok());  // gone already: fine
  EXPECT_EQ(provider->delete_snapshot("ads-01jdel", "../../etc").error().code, "invalid");
  EXPECT_EQ(provider->delete_snapshot("..", "backup-2").error().code, "invalid");
  EXPECT_EQ(provider->delete_snapshot("ads-01jdel", "").error().code, "invalid");
}

// `ads exec` on OpenVZ: `vzctl exec2 CTID LINE` over the SSH connection, the
// vzctl stand-in running LINE with `bash -c` in the container's private area
// (no root filesystem here) as vzctl runs it in the container.
class OpenvzExecTest : public OpenvzProviderTest {
 protected:
  void SetUp() override {
    OpenvzProviderTest::SetUp();
    if (HasFatalFailure()) return;
    auto st = provider->create(spec("ads-01jexec", ip(11)), nullptr);
    ASSERT_TRUE(st.ok()) << st.error().message;
    st = provider->start("ads-01jexec");
    ASSERT_TRUE(st.ok()) << st.error().message;
    host.clear_calls();
  }
  ads::Result<ads::ExecResult> exec(const Argv& argv, int timeout_s = 30, size_t max_bytes = 1 << 20) {
    return provider->exec("ads-01jexec", argv, timeout_s, max_bytes);
  }
  std::filesystem::path priv() const { return host.state_dir() / "ct" / "1011" / "private"; }
};

TEST_F(OpenvzExecTest, OutputAndExitCodeComeBackFromVzctlExec2) {
  auto r = exec({"sh", "-c", "echo out; echo err >&2; echo \"$HOME\" > made-here; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->truncated);
  // it ran in the container, with LXD's environment rather than vzctl's HOME=/
  EXPECT_EQ(slurp(priv() / "made-here"), "/root\n");
  // exactly one command reached the host after the lookup: vzctl exec2 with
  // the whole command line quoted as one argument
  EXPECT_EQ(host.calls_of("vzctl"),
            (std::vector<Argv>{{"vzctl", "exec2", "1011",
                                "HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
                                "'timeout' '-k' '5' '30' 'sh' '-c' "
                                "'echo out; echo err >&2; echo \"$HOME\" > made-here; exit 3' </dev/null; exit $?"}}));

  auto ok = exec({"printf", "%s\\n", "hello"});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_EQ(ok->out, "hello\n");
  EXPECT_EQ(ok->err, "");
  // a command killed by a signal: 128 + the signal, as a shell (and LXD) says
  auto killed = exec({"sh", "-c", "kill -KILL $$"});
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  EXPECT_EQ(killed->exit_code, 137);
  auto missing = exec({"no-such-program-here"});
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_EQ(missing->exit_code, 127) << missing->err;
}

TEST_F(OpenvzExecTest, HostileArgvArrivesByteExactAsSeparateArguments) {
  const std::string pwned = (host.dir() / "pwned").string();
  Argv args = {"$(touch " + pwned + ")",
               "`touch " + pwned + "`",
               "; touch " + pwned,
               "&& touch " + pwned,
               "| touch " + pwned,
               "it's",
               "'",
               "''",
               "'\\''",
               "\"q\" \"",
               "a b",
               "a\nb",
               "\n",
               "line\n; touch " + pwned + "\n",
               "",
               "*",
               "~",
               "$HOME",
               "${PATH}",
               "\\",
               "--",
               "-e",
               "!1",
               "#not a comment",
               "> out-file",
               "</dev/null; exit 0",
               "tab\there",
               "\xc3\xa9t\xc3\xa9"};
  Argv argv = {"printf", "[%s]\\n"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = exec(argv);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string want;
  for (auto& a : args) want += "[" + a + "]\n";
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, want);
  EXPECT_EQ(r->err, "");
  EXPECT_FALSE(std::filesystem::exists(pwned));
  EXPECT_FALSE(std::filesystem::exists(priv() / "> out-file"));
  EXPECT_FALSE(std::filesystem::exists(priv() / "out-file"));

  // a NUL byte cannot reach a program as part of one argument: refused, nothing sent
  host.clear_calls();
  auto nul = exec({"echo", std::string("a\0b", 3)});
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.error().code, "invalid");
  EXPECT_EQ(nul.error().field, "command");
  // longer than one argument may be once quoted twice (a ' takes 13 bytes then): refused, nothing sent
  auto huge = exec({"echo", std::string(20000, '\'')});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code, "invalid");
  EXPECT_EQ(huge.error().field, "command");
  EXPECT_TRUE(host.calls().empty());
  // a long command that fits runs
  auto big = exec({"printf", "%s", std::string(60000, 'x')});
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big->out, std::string(60000, 'x'));
}

TEST_F(OpenvzExecTest, TimeoutIsEnforcedInTheContainerWith124) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = exec({"sh", "-c", "echo before; sleep 30.0417; echo after"}, 1);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 124);
  EXPECT_EQ(r->out, "before\n");
  EXPECT_LT(took, std::chrono::seconds(15)) << "stopped by timeout(1) at 1 s, not by the 30 s sleep";
  // nothing of it is left running
  std::string ps;
  ads::test::run({"pgrep", "-f", "sleep 30.0417"}, &ps);
  EXPECT_EQ(ps, "");
  EXPECT_EQ(exec({"true"}, 0).error().field, "timeout_s");
}

TEST_F(OpenvzExecTest, EachStreamIsCappedAtMaxBytes) {
  auto r = exec({"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' o; head -c 1000 /dev/zero | tr '\\0' e >&2; exit 4"},
                30, 1000);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 4) << "the command ran to its end: the rest was read and dropped";
  EXPECT_EQ(r->out, std::string(1000, 'o'));
  EXPECT_EQ(r->err, std::string(1000, 'e'));  // exactly max_bytes: all of it
  EXPECT_TRUE(r->truncated);
  auto small = exec({"sh", "-c", "printf 1234; printf 5678 >&2"}, 30, 4);
  ASSERT_TRUE(small.ok()) << small.error().message;
  EXPECT_EQ(small->out, "1234");
  EXPECT_EQ(small->err, "5678");
  EXPECT_FALSE(small->truncated);
}

TEST_F(OpenvzExecTest, UnknownStoppedOrBadMachinesAreRefused) {
  auto none = provider->exec("ads-01jnobody", {"true"}, 10, 100);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found");
  ASSERT_TRUE(provider->stop("ads-01jexec").ok());
  host.clear_calls();
  auto stopped = exec({"true"});
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, "conflict");
  EXPECT_NE(stopped.error().message.find("is stopped"), std::string::npos) << stopped.error().message;
  EXPECT_TRUE(host.calls_of("vzctl").empty()) << "no vzctl exec2 on a stopped container";
  EXPECT_EQ(provider->exec("../etc", {"true"}, 10, 100).error().field, "name");
  EXPECT_EQ(exec({}).error().field, "command");
}

TEST_F(OpenvzProviderTest, NoSshdIsUnavailable) {
  auto t = target();
  t.port = 2223;  // nothing listens there
  auto s = ads::openvz::SshSession::connect(t);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "unavailable");  // the engine retries these
}

}  // namespace
