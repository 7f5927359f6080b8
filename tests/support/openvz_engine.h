// Test support: the pieces of an engine whose provider is openvz on an
// SshTestHost (the vzctl stand-in behind a real sshd in a namespace).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/engine.h"
#include "providers/provider.h"
#include "support/engine_wait.h"
#include "support/ssh_host.h"

namespace ads::test {

// The providers map holding only "openvz" on `host`, with the debian-12
// template; `extra` is appended to the provider's settings JSON.
inline std::map<std::string, std::unique_ptr<Provider>> openvz_providers(const SshTestHost& host,
                                                                         const std::string& extra = "") {
  std::map<std::string, std::unique_ptr<Provider>> providers;
  auto p = make_provider("openvz", nlohmann::json::parse(host.settings_json(
                                       ",\"templates\":{\"debian-12\":\"debian-12.0-x86_64-minimal\"}" + extra)));
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  if (p.ok()) providers["openvz"] = std::move(p.value());
  return providers;
}

// engine_options() with openvz as the default provider.
inline EngineOptions openvz_engine_options(const std::filesystem::path& dir) {
  EngineOptions o = engine_options(dir);
  o.default_provider = "openvz";
  return o;
}

}  // namespace ads::test
