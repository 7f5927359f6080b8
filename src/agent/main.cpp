// ads-agent: runs inside every lab machine (as a child of tini, PID 1).
//   ads-agent --config /etc/ads-agent/agent.json
//   ads-agent --wait-for /etc/ads-agent/claimed --config /etc/ads-agent/agent.json
//       (a warm machine: the config is read once the mark exists, agent/wait_file.h)
//   ads-agent --version
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "agent/server.h"
#include "agent/wait_file.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_wake = -1;  // an eventfd the signal handler writes: the main thread sleeps on it
void on_signal(int) {
  const int saved = errno;  // the interrupted code's
  g_stop = 1;
  if (g_wake >= 0) {
    const uint64_t one = 1;
    (void)!::write(g_wake, &one, sizeof one);
  }
  errno = saved;
}

// Sleeps until a stop signal. On an eventfd, not in a loop of short sleeps:
// an idle agent (in each of hundreds of labs) then wakes up for nothing.
void wait_for_stop() {
  g_wake = ::eventfd(0, EFD_CLOEXEC);
  while (!g_stop) {
    uint64_t n = 0;
    if (g_wake >= 0 && ::read(g_wake, &n, sizeof n) >= 0) continue;
    if (g_wake >= 0 && errno == EINTR) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no eventfd: as before
  }
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path, wait_for;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--wait-for") && i + 1 < argc) {
      wait_for = argv[++i];
      continue;
    }
    if (!std::strcmp(argv[i], "--version")) {
      std::cout << "ads-agent 0.1.0\n";
      return 0;
    }
    if (!std::strcmp(argv[i], "--config") && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    std::cerr << "usage: ads-agent [--wait-for FILE] --config FILE | --version\n";
    return 2;
  }
  if (config_path.empty()) {
    std::cerr << "ads-agent: --config FILE is required\n";
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPWR, on_signal);  // what `lxc stop` sends to a container's init
  if (!wait_for.empty()) {
    std::cerr << "ads-agent: waiting for " << wait_for << "\n";
    if (!ads::agent::wait_for_file(wait_for, &g_stop)) {
      std::cerr << "ads-agent: stopped\n";
      return 0;
    }
  }
  std::ifstream in(config_path);
  if (!in) {
    std::cerr << "ads-agent: cannot read " << config_path << "\n";
    return 2;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto cfg = ads::agent::parse_agent_config(ss.str());
  if (!cfg) {
    std::cerr << "ads-agent: " << config_path << ": " << cfg.error().to_string() << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  ads::agent::AgentServer server(std::move(cfg.value()));
  auto st = server.start();
  if (!st) {
    std::cerr << "ads-agent: " << st.error().message << "\n";
    return 1;
  }
  std::cerr << "ads-agent: listening on port " << server.port() << "\n";
  wait_for_stop();
  server.stop();
  std::cerr << "ads-agent: stopped\n";
  return 0;
}
