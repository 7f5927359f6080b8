// ads-agent: runs inside every lab machine (as a child of tini, PID 1).
//   ads-agent --config /etc/ads-agent/agent.json
//   ads-agent --version
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "agent/server.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--version")) {
      std::cout << "ads-agent 0.1.0\n";
      return 0;
    }
    if (!std::strcmp(argv[i], "--config") && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    std::cerr << "usage: ads-agent --config FILE | --version\n";
    return 2;
  }
  if (config_path.empty()) {
    std::cerr << "ads-agent: --config FILE is required\n";
    return 2;
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
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPWR, on_signal);  // what `lxc stop` sends to a container's init
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
