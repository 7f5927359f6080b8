// The agent's command runner on its own: every byte of output in order,
// background daemons, cancel, heartbeats, stderr kept apart.
#include "agent/runner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "support/process.h"

namespace {

using ads::agent::RunOptions;
using ads::agent::RunResult;
using Lines = std::vector<std::pair<std::string, std::string>>;

// Runs the command on a thread and gives up waiting after `guard` (a hang
// guard only: a failing run is reported, never timed).
RunResult run_guarded(const std::string& cmd, const std::string& dir, const RunOptions& o, Lines& lines,
                      std::chrono::seconds guard = std::chrono::seconds(120),
                      const std::function<void(const std::string&, const std::string&)>& also = {}) {
  auto f = std::async(std::launch::async, [&] {
    return ads::agent::run_command(cmd, dir, o, [&](const std::string& s, const std::string& l) {
      lines.push_back({s, l});
      if (also) also(s, l);
    });
  });
  if (f.wait_for(guard) != std::future_status::ready) {
    ADD_FAILURE() << "run_command did not return for " << cmd;
    std::abort();  // the thread still references this frame
  }
  return f.get();
}

std::vector<std::string> of_stream(const Lines& lines, const std::string& stream) {
  std::vector<std::string> out;
  for (auto& [s, l] : lines)
    if (s == stream) out.push_back(l);
  return out;
}

// Issue 14.3: the runner stopped reading 300 ms after the shell exited. With a
// consumer slower than that for what was still in the pipe (the engine writes
// each line to its store), the tail of the output - where the error usually
// is - was lost. Here the consumer slows down near the end, after seq has
// written everything and exited: every line must still arrive, in order.
TEST(AgentRunner, EveryLineArrivesInOrderEvenWhenTheReaderIsSlowAfterTheExit) {
  ads::test::TempDir tmp;
  Lines lines;
  RunOptions o;
  o.timeout_s = 600;
  auto slow_tail = [](const std::string& s, const std::string& l) {
    if (s == "stdout" && l.size() == 6 && l >= "190000")  // the last ~10000 lines: 100 us each
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  };
  auto res = run_guarded("seq 1 200000; seq 1 3000 >&2", tmp.str(), o, lines, std::chrono::seconds(300), slow_tail);
  EXPECT_EQ(res.exit_code, 0);
  auto out = of_stream(lines, "stdout");
  ASSERT_EQ(out.size(), 200000u) << "last line: " << (out.empty() ? "" : out.back());
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] != std::to_string(i + 1)) FAIL() << "line " << i + 1 << " is " << out[i];
  auto err = of_stream(lines, "stderr");
  ASSERT_EQ(err.size(), 3000u);
  EXPECT_EQ(err.back(), "3000");
}

// A command may leave a daemon holding its stdout (httpd from a start
// action): the run still returns once the shell exits, with all the shell
// wrote; a daemon that never stops writing is cut off with a note.
TEST(AgentRunner, DaemonsHoldingOrFloodingThePipesDoNotHoldTheRun) {
  ads::test::TempDir tmp;
  RunOptions o;
  o.timeout_s = 600;
  {
    Lines lines;
    auto res = run_guarded("sleep 30 & echo $! > quiet.pid; seq 1 5000; echo last", tmp.str(), o, lines);
    EXPECT_EQ(res.exit_code, 0);
    auto out = of_stream(lines, "stdout");
    ASSERT_EQ(out.size(), 5001u);
    EXPECT_EQ(out.back(), "last");
  }
  {
    Lines lines;
    auto res = run_guarded("yes flood & echo $! > flood.pid; echo started", tmp.str(), o, lines);
    EXPECT_EQ(res.exit_code, 0);
    auto out = of_stream(lines, "stdout");
    EXPECT_NE(std::find(out.begin(), out.end(), "started"), out.end());
    // (whether the drain met an empty pipe or its 1 MiB allowance first
    // depends on who is faster: either way it returned)
  }
  for (const char* f : {"quiet.pid", "flood.pid"}) {  // the daemons this test started
    std::ifstream in(tmp.path / f);
    pid_t pid = 0;
    if (in >> pid && pid > 0) ::kill(pid, SIGKILL);
  }
}

TEST(AgentRunner, CancelStopsTheWholeGroupEvenWhenItIgnoresSigterm) {
  ads::test::TempDir tmp;
  std::atomic<bool> cancel{false};
  std::atomic<pid_t> group{0};
  RunOptions o;
  o.timeout_s = 600;
  o.cancel = &cancel;
  o.kill_grace = std::chrono::milliseconds(500);
  o.on_group = [&](pid_t g) {
    if (g > 0) group = g;
  };
  Lines lines;
  // the shell ignores SIGTERM, and so does its child: only SIGKILL ends them
  auto res = run_guarded("trap '' TERM; sleep 100000 & echo $! > child.pid; echo ready; wait", tmp.str(), o, lines,
                         std::chrono::seconds(60), [&](const std::string&, const std::string& l) {
                           if (l == "ready") cancel = true;
                         });
  EXPECT_TRUE(res.cancelled);
  EXPECT_FALSE(res.timed_out);
  EXPECT_NE(res.exit_code, 0);
  ASSERT_GT(group.load(), 0);
  std::ifstream in(tmp.path / "child.pid");
  pid_t child = 0;
  ASSERT_TRUE(in >> child && child > 0) << "the command did not write its child's pid";
  // gone, or a zombie waiting for whoever inherited it. SIGKILL was sent
  // before run_guarded returned, but the kernel ends the process when it is
  // next scheduled: on a loaded machine it can still show R for a moment, so
  // look again for up to 10 s (a child that escaped the group stays S).
  std::string state;
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string pid, comm;
    if (!(stat >> pid >> comm >> state) || state == "Z") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(state.empty() || state == "Z") << "sleep " << child << " still runs (state " << state << ")";
}

TEST(AgentRunner, TicksComeWhileAQuietCommandRuns) {
  ads::test::TempDir tmp;
  std::atomic<int> ticks{0};
  RunOptions o;
  o.timeout_s = 600;
  o.tick = std::chrono::milliseconds(50);
  o.on_tick = [&] { ++ticks; };
  Lines lines;
  auto res = run_guarded("sleep 1", tmp.str(), o, lines);
  EXPECT_EQ(res.exit_code, 0);
  EXPECT_TRUE(lines.empty());
  EXPECT_GE(ticks.load(), 2);  // ~10 in 1 s; at least 2 on the slowest machine
}

TEST(AgentRunner, TheCallersEnvironmentReplacesADefaultOfTheSameName) {
  ads::test::TempDir tmp;
  RunOptions o;
  o.env = {"HOME=/ads/home", "ADS_X=1"};
  Lines lines;
  auto res = run_guarded("env | sort", tmp.str(), o, lines);
  ASSERT_EQ(res.exit_code, 0);
  auto out = of_stream(lines, "stdout");
  auto has = [&](const std::string& l) { return std::find(out.begin(), out.end(), l) != out.end(); };
  EXPECT_TRUE(has("HOME=/ads/home"));
  EXPECT_FALSE(has("HOME=/root")) << "the default came first";
  EXPECT_TRUE(has("ADS_X=1"));
  EXPECT_TRUE(has("LANG=C.UTF-8"));  // a default nobody replaced
  EXPECT_EQ(std::count_if(out.begin(), out.end(), [](const std::string& l) { return l.rfind("HOME=", 0) == 0; }), 1);
}

// Issue 15.14: tar's warnings went into the backup stream.
TEST(AgentRunner, RunArgvKeepsStderrApartFromTheData) {
  auto r = ads::agent::run_argv({"sh", "-c", "printf data; printf warning >&2; exit 3"}, "");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "data");
  EXPECT_EQ(r.err, "warning");
  std::string big(1 << 20, 'x');  // more than a pipe holds, both ways
  auto cat = ads::agent::run_argv({"cat"}, big);
  EXPECT_EQ(cat.exit_code, 0);
  EXPECT_EQ(cat.out, big);
  EXPECT_EQ(ads::agent::run_argv({"/nonexistent/program"}, "").exit_code, 127);
}

}  // namespace
