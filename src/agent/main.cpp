// ads-agent: runs inside every lab machine (as a child of tini, PID 1).
//   ads-agent --config /etc/ads-agent/agent.json
//   ads-agent --wait-for /etc/ads-agent/claimed --config /etc/ads-agent/agent.json
//       (a warm machine: the config is read once the mark exists, agent/wait_file.h)
//   ads-agent --version
#include <csignal>
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
void on_signal(int) { g_stop = 1; }
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
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.stop();
  std::cerr << "ads-agent: stopped\n";
  return 0;
}
