// `POST /api/v1/deployments/{id}/exec` (`ads exec`) through the whole path to
// a provider that runs the command: the API's owner/admin check and audit,
// the engine's log line, the openvz provider over real SSH to the test host
// (the vzctl stand-in, tests/support/openvz/vzctl). And the answer for AWS,
// which cannot run one.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "support/engine_wait.h"
#include "support/openvz_engine.h"
#include "support/ssh_host.h"
#include "unit/api/api_fixture.h"

namespace {
using nlohmann::json;

// The answer to a websocket handshake (what `ads shell` sends) on `path`:
// its status (101: the websocket opened) and JSON body. Bounded by 10 s.
std::pair<int, json> handshake(uint16_t port, const std::string& token, const std::string& path) {
  namespace beast = boost::beast;
  boost::asio::io_context ioc;
  beast::websocket::stream<beast::tcp_stream> ws(ioc);
  ws.set_option(beast::websocket::stream_base::decorator(
      [&](beast::websocket::request_type& req) { req.set(beast::http::field::authorization, "Bearer " + token); }));
  beast::websocket::response_type res;
  beast::error_code ec = boost::asio::error::timed_out;
  beast::get_lowest_layer(ws).async_connect(
      boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code e) {
        if (e) ec = e;
        else ws.async_handshake(res, "127.0.0.1", path, [&](beast::error_code e2) { ec = e2; });
      });
  ioc.run_for(std::chrono::seconds(10));
  if (ec && ec != beast::websocket::error::upgrade_declined) return {0, json()};
  return {res.result_int(), json::parse(res.body(), nullptr, false)};
}

class ExecApiTest : public ads::test::ApiTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.error(), "") << "test host";
    host.add_template("debian-12.0-x86_64-minimal");
    ApiTest::SetUp();
  }
  std::map<std::string, std::unique_ptr<ads::Provider>> providers() override {
    auto out = ads::test::openvz_providers(host, ",\"start_command\":\"true\"");
    // never reached: exec is refused before any EC2 call
    auto aws = ads::make_provider("aws", json{{"region", "us-east-1"},
                                              {"endpoint", "http://127.0.0.1:9/"},
                                              {"access_key_id", "AKIDEXEC"},
                                              {"secret_access_key", "exec-test-secret-key"},
                                              {"images", {{"debian-12", "ami-0debian12example"}}},
                                              {"agent_url", "http://127.0.0.1:9/ads-agent"},
                                              {"subnet_id", "subnet-0abc"}});
    EXPECT_TRUE(aws.ok()) << aws.error().to_string();
    if (aws.ok()) out["aws"] = std::move(aws.value());
    return out;
  }
  // A running deployment of `owner` on `provider` (its machine made and
  // started there when the provider is openvz, at the subnet's address
  // `host_octet`, which names its CTID).
  std::string running_lab(const std::string& id, const std::string& provider, const std::string& owner,
                          int host_octet = 2) {
    auto d = ads::test::lab_record(id, ads::State::kRunning, provider);
    d.owner = owner;
    EXPECT_TRUE(store->create(d).ok());
    if (provider == "openvz") {
      auto p = ads::make_provider(
          "openvz", json::parse(host.settings_json(",\"templates\":{\"debian-12\":\"debian-12.0-x86_64-minimal\"},"
                                                   "\"start_command\":\"true\"")));
      EXPECT_TRUE(p.ok());
      ads::MachineSpec m;
      m.name = d.machine;
      m.os_key = "debian-12";
      m.address = host.subnet().substr(0, host.subnet().size() - 4) + std::to_string(host_octet);
      m.labels = {{"deployment", id}};
      auto st = (*p)->create(m, nullptr);
      EXPECT_TRUE(st.ok()) << st.error().message;
      st = (*p)->start(d.machine);
      EXPECT_TRUE(st.ok()) << st.error().message;
    }
    return id;
  }
  using Ws = boost::beast::websocket::stream<boost::beast::tcp_stream>;
  // Opens `ws` on the shell's `path` as the admin (or with the token `as`);
  // its later operations are the caller's to bound.
  bool open_shell(Ws& ws, const std::string& path, const std::string& as = "") {
    namespace beast = boost::beast;
    const std::string bearer = "Bearer " + (as.empty() ? token : as);
    ws.set_option(beast::websocket::stream_base::decorator(
        [bearer](beast::websocket::request_type& req) { req.set(beast::http::field::authorization, bearer); }));
    beast::error_code ec;
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(ws).connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server->port()), ec);
    if (!ec) ws.handshake("127.0.0.1", path, ec);
    beast::get_lowest_layer(ws).expires_never();
    EXPECT_FALSE(ec) << ec.message();
    return !ec;
  }
  json audit_details() {
    json out = json::array();
    auto r = call("GET", "/api/v1/audit");
    for (auto& e : r.body["entries"]) out.push_back(e.value("detail", ""));
    return out;
  }

  ads::test::SshTestHost host;
};

TEST_F(ExecApiTest, OpenvzRunsTheOwnersAndAdminsCommandsOnlyAndAuditsEach) {
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"dan","role":"deployer"})").status, 201);
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"eve","role":"deployer"})").status, 201);
  std::string dan = call("POST", "/api/v1/tokens", R"({"name":"t","user":"dan"})").body["secret"];
  std::string eve = call("POST", "/api/v1/tokens", R"({"name":"t","user":"eve"})").body["secret"];
  std::string id = running_lab("01jexec000000000000000000a", "openvz", "dan");
  const std::string path = "/api/v1/deployments/" + id + "/exec";
  host.clear_calls();

  // another deployer: refused before anything reaches the host
  expect_error(call_as(eve, "POST", path, R"({"command":["touch","/tmp/ads-exec-by-eve"]})"), 403);
  EXPECT_TRUE(host.calls_of("vzctl").empty());

  // the owner: the command ran in the container, its output and code came back
  json cmd = {{"command", {"sh", "-c", "echo \"$1\"; echo e >&2; exit 3", "-", "it's $(x)"}}};
  auto mine = call_as(dan, "POST", path, cmd.dump());
  ASSERT_EQ(mine.status, 200) << mine.body.dump();
  EXPECT_EQ(mine.body["exit_code"], 3);
  EXPECT_EQ(mine.body["stdout"], "it's $(x)\n");
  EXPECT_EQ(mine.body["stderr"], "e\n");
  EXPECT_EQ(mine.body["timed_out"], false);
  EXPECT_EQ(mine.body["truncated"], false);
  auto sent = host.calls_of("vzctl");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0][1], "exec2");

  // an admin, with a timeout
  auto t = call("POST", path, R"({"command":["sleep","30"],"timeout_s":1})");
  ASSERT_EQ(t.status, 200) << t.body.dump();
  EXPECT_EQ(t.body["exit_code"], 124);
  EXPECT_EQ(t.body["timed_out"], true);

  // each use is in the audit with its command, and in the deployment's log
  json details = audit_details();
  EXPECT_NE(std::find(details.begin(), details.end(), "exec sh -c echo \"$1\"; echo e >&2; exit 3 - it's $(x)"),
            details.end())
      << details.dump();
  EXPECT_NE(std::find(details.begin(), details.end(), "exec sleep 30"), details.end()) << details.dump();
  std::string log = ads::test::log_of(*store, id);
  EXPECT_NE(log.find("exec by dan: sh -c"), std::string::npos) << log;
  EXPECT_NE(log.find("exec by dan ended with exit code 3"), std::string::npos) << log;
  EXPECT_NE(log.find("exec by admin: sleep 30"), std::string::npos) << log;
  EXPECT_NE(log.find("exec by admin ended with exit code 124"), std::string::npos) << log;
}

TEST_F(ExecApiTest, OpenvzStoppedMachineIsAConflictThatSaysSo) {
  std::string id = running_lab("01jexec000000000000000000b", "openvz", "admin");
  auto p = ads::make_provider("openvz", json::parse(host.settings_json()));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->stop("ads-" + id).ok());  // behind ADS's back
  auto r = call("POST", "/api/v1/deployments/" + id + "/exec", R"({"command":["true"]})");
  expect_error(r, 409);
  EXPECT_EQ(r.body["error"].value("code", ""), "conflict") << r.body.dump();
  EXPECT_NE(r.body["error"].value("message", "").find("is stopped"), std::string::npos) << r.body.dump();
}

TEST_F(ExecApiTest, AwsIsUnsupportedWithAJsonAnswerSayingWhyAndWhatToDo) {
  std::string id = running_lab("01jexec000000000000000000c", "aws", "admin");
  auto r = call("POST", "/api/v1/deployments/" + id + "/exec", R"({"command":["true"]})");
  expect_error(r, 409);
  EXPECT_EQ(r.body["error"].value("code", ""), "unsupported") << r.body.dump();
  std::string msg = r.body["error"].value("message", "");
  EXPECT_NE(msg.find("SSM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lab's own access"), std::string::npos) << msg;
  // the attempt is audited all the same
  json details = audit_details();
  EXPECT_NE(std::find(details.begin(), details.end(), "exec true"), details.end()) << details.dump();
}

// `ads shell` on OpenVZ through the whole path: the API's websocket, the
// engine, `vzctl enter` on a terminal that the test host's sshd allocates
// (the stand-in runs bash in the container's area), the program's exit code
// as the last message, and a window size that reaches the terminal.
TEST_F(ExecApiTest, AShellOnOpenvzRunsOnAHostTerminalAndGivesItsExitCode) {
  namespace beast = boost::beast;
  std::string id = running_lab("01jexec000000000000000000d", "openvz", "admin");
  boost::asio::io_context ioc;
  Ws ws(ioc);
  ASSERT_TRUE(open_shell(ws, "/api/v1/deployments/" + id + "/shell?cols=91&rows=33"));
  beast::error_code ec;
  // every step bounded by 20 s
  auto run = [&] {
    ioc.restart();
    ioc.run_for(std::chrono::seconds(20));
  };
  auto send = [&](const std::string& data, bool text) {
    ws.text(text);
    bool done = false;
    ws.async_write(boost::asio::buffer(data), [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    run();
    return done && !ec;
  };
  std::string screen, last;
  // reads until `text` is on the screen or the websocket ends (its last text message in `last`)
  auto read_until = [&](const std::string& text) {
    while (screen.find(text) == std::string::npos) {
      beast::flat_buffer buf;
      bool done = false;
      ws.async_read(buf, [&](beast::error_code e, size_t) {
        ec = e;
        done = true;
      });
      run();
      if (!done || ec) return false;
      (ws.got_text() ? last : screen) += beast::buffers_to_string(buf.data());
    }
    return true;
  };
  ASSERT_TRUE(send("stty size; echo vz-$((3*3))\r", false));
  EXPECT_TRUE(read_until("vz-9")) << screen;
  EXPECT_NE(screen.find("33 91"), std::string::npos) << screen;
  ASSERT_TRUE(send(R"({"resize":{"cols":120,"rows":40}})", true));
  // the session's one thread applies a size before it passes on what was typed after it
  ASSERT_TRUE(send("stty size\r", false));
  EXPECT_TRUE(read_until("40 120")) << screen;
  ASSERT_TRUE(send("exit 6\r", false));
  EXPECT_FALSE(read_until("(never printed)"));  // to the end
  EXPECT_EQ(ec, beast::websocket::error::closed) << ec.message();
  EXPECT_EQ(json::parse(last, nullptr, false), json({{"exit_code", 6}})) << last << screen;
  std::string log;
  for (int i = 0; i < 100 && log.find("shell by admin ended with exit code 6") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = ads::test::log_of(*store, id);
  }
  EXPECT_NE(log.find("shell by admin ended with exit code 6"), std::string::npos) << log;
  auto sent = host.calls_of("vzctl");
  EXPECT_FALSE(std::none_of(sent.begin(), sent.end(), [](auto& c) { return c.size() > 1 && c[1] == "enter"; }));
}

// Whether a process of this machine (the stand-in's containers run here)
// has `text` in its command line.
bool process_running(const std::string& text) {
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_F(ExecApiTest, AShellOnOpenvzIsHungUpWhenItsClientGoesAway) {
  namespace beast = boost::beast;
  std::string id = running_lab("01jexec000000000000000000g", "openvz", "admin");
  {
    boost::asio::io_context ioc;
    Ws ws(ioc);
    ASSERT_TRUE(open_shell(ws, "/api/v1/deployments/" + id + "/shell"));
    beast::error_code ec;
    ws.binary(true);
    ws.write(boost::asio::buffer(std::string("sleep 4343\r")), ec);
    ASSERT_FALSE(ec) << ec.message();
    bool started = false;
    for (int i = 0; i < 200 && !started; ++i) {
      started = process_running("sleep 4343");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(started);
    beast::get_lowest_layer(ws).socket().close(ec);  // gone, without a close
  }
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !process_running("sleep 4343");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone);
  std::string log;
  for (int i = 0; i < 100 && log.find("was closed before its program ended") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = ads::test::log_of(*store, id);
  }
  EXPECT_NE(log.find("shell by admin was closed before its program ended"), std::string::npos) << log;
}

TEST_F(ExecApiTest, AShellOnAwsIsRefusedAsUnsupportedBeforeTheWebsocketAndAudited) {
  std::string id = running_lab("01jexec000000000000000000e", "aws", "admin");
  auto [status, body] = handshake(server->port(), token, "/api/v1/deployments/" + id + "/shell");
  EXPECT_EQ(status, 409) << body.dump();
  EXPECT_EQ(body["error"].value("code", ""), "unsupported") << body.dump();
  EXPECT_NE(body["error"].value("message", "").find("SSM"), std::string::npos) << body.dump();
  // the attempt is audited, and the deployment's log says it failed to open
  json details = audit_details();
  EXPECT_EQ(std::count(details.begin(), details.end(), "shell"), 1) << details.dump();
  EXPECT_NE(ads::test::log_of(*store, id).find("shell for admin could not be opened"), std::string::npos);
  // an unknown terminal name, a size out of range: 400 naming the field
  for (auto [query, field] :
       {std::pair{"?term=x%3Bterm", "term"}, std::pair{"?cols=0", "cols"}, std::pair{"?rows=1001", "rows"}}) {
    auto [st, b] = handshake(server->port(), token, "/api/v1/deployments/" + id + "/shell" + query);
    EXPECT_EQ(st, 400) << query << b.dump();
    EXPECT_EQ(b["error"].value("field", ""), field) << b.dump();
  }
}

// `ads shell`'s bounds: limits.shells_per_user per user (429: one user
// cannot take every shell), limits.shells on the server (503); a closed
// shell gives its place back.
class ShellLimitTest : public ExecApiTest {
 protected:
  ads::ApiLimits limits() override {
    auto l = ExecApiTest::limits();
    l.shells = 3;
    l.shells_per_user = 2;
    return l;
  }
};

TEST_F(ShellLimitTest, OneUserCannotTakeEveryShellAndTheServerHasItsBound) {
  ASSERT_EQ(call("POST", "/api/v1/users", R"({"name":"dan","role":"deployer"})").status, 201);
  std::string dan = call("POST", "/api/v1/tokens", R"({"name":"t","user":"dan"})").body["secret"];
  std::string mine = running_lab("01jexec000000000000000000m", "openvz", "admin");
  std::string his = running_lab("01jexec000000000000000000n", "openvz", "dan", 3);
  const std::string path_mine = "/api/v1/deployments/" + mine + "/shell";
  const std::string path_his = "/api/v1/deployments/" + his + "/shell";
  boost::asio::io_context ioc;
  auto first = std::make_unique<Ws>(ioc), second = std::make_unique<Ws>(ioc);
  ASSERT_TRUE(open_shell(*first, path_mine));
  ASSERT_TRUE(open_shell(*second, path_mine));
  // a third of the admin's: 429, with the reason
  auto [status, body] = handshake(server->port(), token, path_mine);
  EXPECT_EQ(status, 429) << body.dump();
  EXPECT_NE(body["error"].value("message", "").find("you have 2 shells open"), std::string::npos) << body.dump();
  // another user still gets one: the server's third
  Ws his_ws(ioc);
  ASSERT_TRUE(open_shell(his_ws, path_his, dan));
  // the server is full: 503 for anyone
  std::tie(status, body) = handshake(server->port(), dan, path_his);
  EXPECT_EQ(status, 503) << body.dump();
  // one of the admin's closed: its place is free again (the session ends a moment later)
  boost::beast::error_code ec;
  boost::beast::get_lowest_layer(*first).socket().close(ec);
  first.reset();
  for (int i = 0; i < 100 && status != 101; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = handshake(server->port(), token, path_mine).first;  // opened and closed again at once
  }
  EXPECT_EQ(status, 101) << "the closed shell's place was never given back";
}

}  // namespace
