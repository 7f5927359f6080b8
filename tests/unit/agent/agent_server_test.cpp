// The agent in-process on loopback with a real client: authentication of
// every request, upload, streamed actions, failure paths.
#include "agent_fixture.h"
#include "engine/archive.h"

using nlohmann::json;

namespace {
using namespace ads::test::agent_fixture;

TEST_F(AgentTest, HealthNeedsTheSecretAndReportsFigures) {
  ads::agent::AgentClient good(base, kSecret);
  auto h = good.health();
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_GT((*h)["uptime_s"].get<double>(), 0.0);
  EXPECT_GT((*h)["memory"]["total_kb"].get<long long>(), 0);
  EXPECT_GT((*h)["disk"]["total_kb"].get<long long>(), 0);
  EXPECT_EQ((*h)["load"].size(), 3u);
  EXPECT_GT((*h)["processes"].get<int>(), 0);
  EXPECT_FALSE((*h)["lab"]["uploaded"].get<bool>());

  // A client with another secret expects another key: it refuses the agent
  // during the handshake, before sending anything.
  ads::agent::AgentClient other(base, std::string(64, 'x'));
  auto refused = other.health();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "tls") << refused.error().message;
  EXPECT_EQ(other.wait_ready(std::chrono::seconds(5)).error().code, "tls");  // at once, no waiting

  // The right key but a wrong HMAC (someone who knows the public key only):
  // the agent refuses with 401.
  auto forged = ads::agent::signed_headers(std::string(64, 'x'), "GET", "/v1/health", "", now_s());
  EXPECT_EQ(raw_status("GET", "/v1/health", forged), 401);
  EXPECT_TRUE(good.health().ok());  // and the good client still works
}

TEST_F(AgentTest, TamperedOrMalformedSignatureHeadersAreRefused) {
  auto set = [](std::vector<std::pair<std::string, std::string>> h, const std::string& name, const std::string& v) {
    for (auto& [k, x] : h)
      if (k == name) x = v;
    return h;
  };
  auto good = [&] { return ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s()); };
  auto sig_of = [](const std::vector<std::pair<std::string, std::string>>& h) {
    for (auto& [k, x] : h)
      if (k == ads::agent::kHeaderSignature) return x;
    return std::string();
  };
  // each field of a good request changed after signing
  EXPECT_EQ(raw_status("GET", "/v1/health", set(good(), ads::agent::kHeaderTime, std::to_string(now_s() + 1))), 401);
  EXPECT_EQ(raw_status("GET", "/v1/health", set(good(), ads::agent::kHeaderNonce, std::string(32, 'a'))), 401);
  auto h = good();
  std::string sig = sig_of(h);
  sig[0] = sig[0] == '0' ? '1' : '0';
  EXPECT_EQ(raw_status("GET", "/v1/health", set(h, ads::agent::kHeaderSignature, sig)), 401);
  // malformed values
  for (const std::string& bad :
       {std::string(""), std::string("zz"), std::string(64, 'g'), std::string(63, 'a'), std::string(128, 'a')})
    EXPECT_EQ(raw_status("GET", "/v1/health", set(good(), ads::agent::kHeaderSignature, bad)), 401) << bad;
  for (const std::string& bad : {std::string(""), std::string("soon"), std::string("1e3"), std::string("-1"),
                                 std::string("99999999999999999999999")})
    EXPECT_EQ(raw_status("GET", "/v1/health", set(good(), ads::agent::kHeaderTime, bad)), 401) << bad;
  EXPECT_EQ(raw_status("GET", "/v1/health", set(good(), ads::agent::kHeaderNonce, "")), 401);
  EXPECT_EQ(raw_status("GET", "/v1/health", good()), 200);  // untouched, the same request passes
}

TEST_F(AgentTest, OversizedUploadsAreRefusedWith413) {
  ads::agent::AgentConfig cfg;
  cfg.secret = kSecret;
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.lab_dir = (tmp.path / "small").string();
  cfg.max_upload_bytes = 4096;
  ads::agent::AgentServer small(cfg);
  ASSERT_TRUE(small.start().ok());
  std::string big(16384, 'x');
  ads::http::ClientRequest r;
  r.method = "PUT";
  r.url = "https://127.0.0.1:" + std::to_string(small.port()) + "/v1/lab";
  r.pinned_key = pin;
  r.body = big;
  r.headers = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", big, now_s());
  r.headers.push_back({"Content-Type", "application/gzip"});
  auto res = ads::http::request(r);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(res->body.find("too_large"), std::string::npos) << res->body;
  // and a signed upload that is not a gzip archive: 400, nothing unpacked
  std::string junk = "not an archive";
  r.body = junk;
  r.headers = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", junk, now_s());
  auto j = ads::http::request(r);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->status, 400) << j->body;
  small.stop();
}

TEST_F(AgentTest, SpeaksOnlyTlsWithTheKeyDerivedFromTheSecret) {
  // Plain HTTP at the agent's port: a 400 that names HTTPS, nothing served.
  ads::http::ClientRequest plain;
  plain.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/v1/health";
  plain.headers = ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s());
  auto r = ads::http::request(plain);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("tls_required"), std::string::npos) << r->body;

  // HTTPS checked against the system's CA store: a self-signed agent fails.
  ads::http::ClientRequest unpinned;
  unpinned.url = base + "/v1/health";
  auto u = ads::http::request(unpinned);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, "tls") << u.error().message;

  // The pin is a function of the secret alone: same secret, same pin; the
  // agent's certificate carries exactly that key.
  EXPECT_EQ(*ads::agent::agent_pin(kSecret), pin);
  EXPECT_NE(*ads::agent::agent_pin(std::string(64, 'x')), pin);
  auto id = ads::agent::agent_identity(kSecret);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*ads::http::tls::public_key_pin(id->cert_pem), pin);
  EXPECT_EQ(id->cert_pem.find(kSecret), std::string::npos);

  // An http:// AgentClient gets the same 400, not an answer.
  ads::agent::AgentClient cleartext("http://127.0.0.1:" + std::to_string(server->port()), kSecret);
  EXPECT_FALSE(cleartext.health().ok());
}

TEST_F(AgentTest, RoutesAreExactlyTheDocumentedOnesAndNoneRunsACommandFromTheRequest) {
  // Every route the agent registers; a new one must be added here on purpose.
  std::vector<std::string> expected = {"DELETE /v1/ssh",
                                       "GET /v1/backup",
                                       "GET /v1/health",
                                       "GET /v1/lab",  // hands back the kept archive, runs nothing
                                       "POST /v1/actions/cancel",
                                       "POST /v1/actions/{name}",
                                       "POST /v1/check",  // the lab's own install playbook, in check mode
                                       "POST /v1/secret",
                                       "POST /v1/ssh",
                                       "PUT /v1/backup",
                                       "PUT /v1/lab"};  // /v1/ssh takes a key, never a command (ssh_access_test.cpp)
  EXPECT_EQ(server->routes(), expected);

  // Actions are names from the lab's spec, never a command: a shell command
  // or a path as the action name is refused without running anything.
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec_with(R"(["true"])"))).ok());
  fs::path marker = tmp.path / "ran";
  for (const std::string& name :
       {"touch%20" + marker.string(), std::string("..%2F..%2Fbin%2Fsh"), std::string("exec")}) {
    long st = raw_status("POST", "/v1/actions/" + name,
                         ads::agent::signed_headers(kSecret, "POST", "/v1/actions/" + name, "", now_s()));
    EXPECT_GE(st, 400) << name;
    EXPECT_LT(st, 500) << name;
  }
  // A body on an action request is not read as a command either.
  std::string body = "touch " + marker.string();
  long st = raw_status("POST", "/v1/actions/sh",
                       ads::agent::signed_headers(kSecret, "POST", "/v1/actions/sh", body, now_s()), body);
  EXPECT_GE(st, 400);
  EXPECT_FALSE(fs::exists(marker));
  for (const char* m : {"GET", "PUT", "POST", "DELETE"})
    for (const char* t : {"/v1/exec", "/v1/run", "/v1/command", "/v1/shell"})
      EXPECT_EQ(raw_status(m, t, ads::agent::signed_headers(kSecret, m, t, "", now_s())), 404) << m << " " << t;
}

TEST_F(AgentTest, RefusesUnsignedStaleReplayedAndTamperedRequests) {
  EXPECT_EQ(raw_status("GET", "/v1/health", {}), 401);
  EXPECT_EQ(raw_status("GET", "/v1/nowhere", {}), 401);  // authentication comes before routing
  auto stale = ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s() - 3600);
  EXPECT_EQ(raw_status("GET", "/v1/health", stale), 401);
  auto future = ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s() + 3600);
  EXPECT_EQ(raw_status("GET", "/v1/health", future), 401);
  auto once = ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s());
  EXPECT_EQ(raw_status("GET", "/v1/health", once), 200);
  EXPECT_EQ(raw_status("GET", "/v1/health", once), 401);  // replay
  auto for_other_path = ads::agent::signed_headers(kSecret, "POST", "/v1/actions/test", "", now_s());
  EXPECT_EQ(raw_status("POST", "/v1/actions/install", for_other_path), 401);
  auto body_signed = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", "original", now_s());
  EXPECT_EQ(raw_status("PUT", "/v1/lab", body_signed, "tampered"), 401);
}

TEST_F(AgentTest, InstallStreamsOutputOfBothStreamsAndRunsFromTheLabRoot) {
  auto tgz = lab_tarball(spec_with(R"(["echo hello-out","echo hello-err >&2","cat data/in.txt > made.txt"])"),
                         {{"data/in.txt", "payload"}});
  ads::agent::AgentClient c(base, kSecret);
  auto up = c.upload_lab(tgz);
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ((*up)["spec_format"], 2);
  std::vector<std::pair<std::string, std::string>> lines;
  auto rc = c.run_action("install", [&](const std::string& s, const std::string& l) { lines.push_back({s, l}); });
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_EQ(*rc, 0);
  auto has = [&](const std::string& s, const std::string& l) {
    return std::find(lines.begin(), lines.end(), std::make_pair(s, l)) != lines.end();
  };
  EXPECT_TRUE(has("stdout", "hello-out"));
  EXPECT_TRUE(has("stderr", "hello-err"));
  EXPECT_TRUE(has("agent", "$ echo hello-out"));
  std::ifstream made(tmp.path / "lab" / "made.txt");
  std::string content((std::istreambuf_iterator<char>(made)), {});
  EXPECT_EQ(content, "payload");
  EXPECT_TRUE((*c.health())["lab"]["uploaded"].get<bool>());
}

// The agent frees itself before the last line of an action's stream, so the
// next action sent as soon as that line is read is never refused as "busy"
// (seen once in CI: install, then start at once, got 409).
TEST_F(AgentTest, TheNextActionRightAfterOneEndsIsNeverRefusedAsBusy) {
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec_with(R"(["true"])"))).ok());
  for (int i = 0; i < 30; ++i) {
    SCOPED_TRACE(i);
    for (const char* action : {"install", "start"}) {
      auto rc = c.run_action(action, [](const std::string&, const std::string&) {});
      ASSERT_TRUE(rc.ok()) << action << ": " << rc.error().message;
      EXPECT_EQ(*rc, 0);
    }
  }
}

TEST_F(AgentTest, FirstFailingCommandStopsTheRunWithItsExitCode) {
  auto tgz = lab_tarball(spec_with(R"(["echo one","exit 3","echo never"])"));
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(tgz).ok());
  std::string all;
  auto rc = c.run_action("install", [&](const std::string&, const std::string& l) { all += l + "\n"; });
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 3);
  EXPECT_NE(all.find("one\n"), std::string::npos);
  EXPECT_NE(all.find("exit 3: exit 3"), std::string::npos) << all;
  EXPECT_EQ(all.find("never\n"), std::string::npos) << all;
}

TEST_F(AgentTest, BackgroundDaemonsDoNotHoldTheActionAndTimeoutsKill) {
  auto tgz = lab_tarball(spec_with(R"(["sleep 30 & echo started"])", R"(,"test":["sleep 20"])"));
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(tgz).ok());
  auto t0 = std::chrono::steady_clock::now();
  auto rc = c.run_action("install", [](const std::string&, const std::string&) {});
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0);
  EXPECT_LT(took, std::chrono::seconds(10));
  // the test action outlives the 3 s command timeout
  std::string all;
  t0 = std::chrono::steady_clock::now();
  rc = c.run_action("test", [&](const std::string&, const std::string& l) { all += l + "\n"; });
  took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(rc.ok());
  EXPECT_NE(*rc, 0);
  EXPECT_NE(all.find("timed out after 3 s"), std::string::npos) << all;
  EXPECT_LT(took, std::chrono::seconds(15));
}

TEST_F(AgentTest, UnknownUndefinedAndPrematureActions) {
  ads::agent::AgentClient c(base, kSecret);
  auto before = c.run_action("install", [](const std::string&, const std::string&) {});
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().code, "conflict");  // nothing uploaded yet
  ASSERT_TRUE(c.upload_lab(lab_tarball(spec_with("[]"))).ok());
  auto unknown = c.run_action("format-disk", [](const std::string&, const std::string&) {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "not_found");
  auto undefined = c.run_action("backup", [](const std::string&, const std::string&) {});
  ASSERT_FALSE(undefined.ok());
  EXPECT_EQ(undefined.error().code, "not_found");
  EXPECT_NE(undefined.error().message.find("defines no 'backup' action"), std::string::npos);
}

TEST_F(AgentTest, UnsafeArchivesAndInvalidSpecsAreRefused) {
  ads::agent::AgentClient c(base, kSecret);
  // archives whose members would land outside the lab directory
  for (std::string member : {"../outside.txt", "/etc/evil", "a/../../outside.txt"}) {
    auto r = c.upload_lab(tar_gz_with_member(member));
    ASSERT_FALSE(r.ok()) << member;
    EXPECT_EQ(r.error().code, "invalid");
    EXPECT_NE(r.error().message.find("unsafe member"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(fs::exists(tmp.path / "outside.txt"));

  auto bad = c.upload_lab(
      lab_tarball(R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["s"]},"http":{"port":9089}})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "http.port");
  auto garbage = c.upload_lab("not a tarball");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, "invalid");
}

TEST(AgentConfig, ParsesAndNamesBadFields) {
  auto ok = ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","port":9089,"lab_dir":"/opt/lab"})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->port, 9089);
  EXPECT_EQ(ads::agent::parse_agent_config("{}").error().field, "secret");
  EXPECT_EQ(ads::agent::parse_agent_config(R"({"secret":"short"})").error().field, "secret");
  EXPECT_EQ(ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","lab_dir":"rel"})").error().field,
            "lab_dir");
  // what lies beside the lab (its kept archive, a check's copy) never lands in it
  auto slash = ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","lab_dir":"/opt/lab//"})");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->lab_dir, "/opt/lab");
  EXPECT_EQ(ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","lab_dir":"///"})").error().field,
            "lab_dir");
  EXPECT_EQ(ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","port":70000})").error().field, "port");
  EXPECT_EQ(
      ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","secret_file":"rel/secret"})").error().field,
      "secret_file");
  EXPECT_EQ(ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","secret_file":7})").error().field,
            "secret_file");
  EXPECT_EQ(ads::agent::parse_agent_config(R"({"secret":")" + kSecret + R"(","secret_file":"/etc/ads-agent/secret"})")
                ->secret_file,
            "/etc/ads-agent/secret");
}

TEST(AgentProtocol, KnownAnswerAndEveryFieldIsCovered) {
  // Known answer: printf 'GET\n/v1/health\n1700000000\nabcdef0123456789\n'"$(printf '' | sha256sum | cut -c1-64)" |
  //   openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
  const std::string secret = "0123456789abcdef0123456789abcdef";
  std::string canon = ads::agent::canonical("GET", "/v1/health", "1700000000", "abcdef0123456789", "");
  EXPECT_EQ(canon,
            "GET\n/v1/health\n1700000000\nabcdef0123456789\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ads::agent::sign(secret, canon), "c2be2e79b6c629de8a3e4711065f7ced6d4dab72ed99c661cfb423d9e9abfd04");
  std::string sig = ads::agent::sign(secret, canon);
  EXPECT_TRUE(ads::agent::signature_matches(secret, canon, sig));
  for (const auto& other : {ads::agent::canonical("PUT", "/v1/health", "1700000000", "abcdef0123456789", ""),
                            ads::agent::canonical("GET", "/v1/lab", "1700000000", "abcdef0123456789", ""),
                            ads::agent::canonical("GET", "/v1/health", "1700000001", "abcdef0123456789", ""),
                            ads::agent::canonical("GET", "/v1/health", "1700000000", "abcdef0123456788", ""),
                            ads::agent::canonical("GET", "/v1/health", "1700000000", "abcdef0123456789", "x")})
    EXPECT_FALSE(ads::agent::signature_matches(secret, other, sig));
  EXPECT_FALSE(ads::agent::signature_matches(secret, canon, sig.substr(1)));
}

TEST(AgentProtocol, NonceCacheRefusesReplaysAndForgetsOldNonces) {
  ads::agent::NonceCache c;
  EXPECT_TRUE(c.insert("n1", 1000));
  EXPECT_FALSE(c.insert("n1", 1001));
  EXPECT_TRUE(c.insert("n2", 1001));
  // long after the skew window, n1 is forgotten (a replay would fail the time check anyway)
  EXPECT_TRUE(c.insert("n1", 1000 + 3 * ads::agent::kMaxSkewSeconds));
}

}  // namespace

// The machine's uptime counts from its PID 1: in a container the host's
// /proc/uptime less the container init's start (field 22, clock ticks).
TEST(AgentHealth, MachineUptimeCountsFromInit) {
  // host up 36500.13 s; the init started 36497.93 s after boot (100 ticks/s)
  std::string stat = "1 (tini) S 0 1 1 0 -1 4194560 1190 0 0 0 0 0 0 0 20 0 1 0 3649793 2412544 206 rest";
  EXPECT_NEAR(ads::agent::machine_uptime("36500.13 48780.39\n", stat, 100), 2.2, 1e-6);
  // a command name with spaces and parentheses does not shift the fields
  std::string odd = "1 (my (odd) init) S 0 1 1 0 -1 4194560 1190 0 0 0 0 0 0 0 20 0 1 0 3649793 2412544 206";
  EXPECT_NEAR(ads::agent::machine_uptime("36500.13 48780.39\n", odd, 100), 2.2, 1e-6);
  // unreadable or odd stat: the host's uptime
  EXPECT_DOUBLE_EQ(ads::agent::machine_uptime("36500.13 1\n", "", 100), 36500.13);
  EXPECT_DOUBLE_EQ(ads::agent::machine_uptime("36500.13 1\n", "1 (x) S 0 1", 100), 36500.13);
  EXPECT_DOUBLE_EQ(ads::agent::machine_uptime("36500.13 1\n", stat, 0), 36500.13);
  std::string bad = "1 (x) S 0 1 1 0 -1 4194560 1190 0 0 0 0 0 0 0 20 0 1 0 12x 2412544";
  EXPECT_DOUBLE_EQ(ads::agent::machine_uptime("36500.13 1\n", bad, 100), 36500.13);
  // an init that started "after" the uptime (clock oddities): never negative
  EXPECT_DOUBLE_EQ(ads::agent::machine_uptime("10 1\n", stat, 100), 10.0);
}

namespace {
// A command's output is any bytes; what reaches ADS is valid UTF-8, with each
// ill-formed byte shown as U+FFFD, and the line is not lost.
TEST_F(AgentTest, CommandOutputWithInvalidUtf8ArrivesAsValidText) {
  auto tgz = lab_tarball(spec_with(R"(["printf 'a\\377\\376b\\n'","printf 'c\\355\\240\\200d\\n' >&2"])"));
  ads::agent::AgentClient c(base, kSecret);
  ASSERT_TRUE(c.upload_lab(tgz).ok());
  std::vector<std::pair<std::string, std::string>> lines;
  auto rc = c.run_action("install", [&](const std::string& s, const std::string& l) { lines.push_back({s, l}); });
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_EQ(*rc, 0);
  const std::string fffd = "\xEF\xBF\xBD";
  auto has = [&](const std::string& s, const std::string& l) {
    return std::find(lines.begin(), lines.end(), std::make_pair(s, l)) != lines.end();
  };
  EXPECT_TRUE(has("stdout", "a" + fffd + fffd + "b"));
  EXPECT_TRUE(has("stderr", "c" + fffd + fffd + fffd + "d"));  // a surrogate's three bytes
}
}  // namespace

// ---------------------------------------------------------------- symbolic links in a lab (issue 14.2)

// A .tar.gz holding ads-lab.json and the links given (name -> target), as a
// hand-made archive would: the packer on the ADS side refuses links that
// leave a lab, the agent must refuse them too.
std::string tar_gz_with_links(const std::string& spec, const std::vector<std::pair<std::string, std::string>>& links) {
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
  archive_entry_set_pathname(e, "ads-lab.json");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(spec.size()));
  archive_write_header(a, e);
  archive_write_data(a, spec.data(), spec.size());
  for (auto& [name, target] : links) {
    archive_entry_clear(e);
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFLNK);
    archive_entry_set_perm(e, 0777);
    archive_entry_set_symlink(e, target.c_str());
    archive_write_header(a, e);
  }
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

TEST_F(AgentTest, LinksInsideTheLabArriveAsLinksUnderTheirOwnNames) {
  // packed by the real packer of the ADS side
  fs::path src = tmp.path / "linklab";
  fs::create_directories(src / "site");
  std::ofstream(src / "ads-lab.json") << spec_with(R"(["true"])");
  std::ofstream(src / "site" / "index.html") << "hello";
  fs::create_symlink("index.html", src / "site" / "alias.html");
  fs::create_directories(src / "pages");
  fs::create_symlink("../site", src / "pages" / "docs");
  auto tgz = ads::tar_gz_directory(src.string());
  ASSERT_TRUE(tgz.ok()) << tgz.error().message;
  ads::agent::AgentClient c(base, kSecret);
  auto up = c.upload_lab(*tgz);
  ASSERT_TRUE(up.ok()) << up.error().message;
  fs::path lab = tmp.path / "lab";
  ASSERT_TRUE(fs::is_symlink(lab / "site" / "alias.html"));
  EXPECT_EQ(fs::read_symlink(lab / "site" / "alias.html"), "index.html");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(lab / "site" / "index.html")));
  std::ifstream in(lab / "site" / "alias.html");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "hello");
  EXPECT_EQ(fs::read_symlink(lab / "pages" / "docs"), "../site");
  EXPECT_TRUE(fs::is_regular_file(lab / "pages" / "docs" / "index.html"));
}

TEST_F(AgentTest, AnArchiveWithALinkLeavingTheLabIsRefusedNamingIt) {
  ads::agent::AgentClient c(base, kSecret);
  fs::path lab = tmp.path / "lab";
  struct Case {
    std::vector<std::pair<std::string, std::string>> links;
    std::string named;
  };
  for (const Case& k : std::vector<Case>{{{{"evil", "/etc/passwd"}}, "evil -> /etc/passwd"},
                                         {{{"site/up", "../../outside"}}, "site/up -> ../../outside"},
                                         {{{"self", "."}, {"chain", "self/../outside"}}, "chain -> self/../outside"}}) {
    auto up = c.upload_lab(tar_gz_with_links(spec_with(R"(["true"])"), k.links));
    ASSERT_FALSE(up.ok()) << k.named;
    EXPECT_NE(up.error().message.find(k.named), std::string::npos) << up.error().message;
    for (auto& [name, target] : k.links) EXPECT_FALSE(fs::is_symlink(fs::symlink_status(lab / name))) << name;
    EXPECT_FALSE(fs::exists(lab / "ads-lab.json")) << "nothing of a refused archive stays";
  }
  // and the agent is not left with a lab: actions are refused
  auto h = c.health();
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE((*h)["lab"]["uploaded"].get<bool>());
}
