#include "providers/aws/user_data.h"

#include <sodium.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace ads::aws {

std::string base64(const std::string& bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

Result<std::string> unbase64(const std::string& text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), "\n\r",
                        &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return Error::make("invalid", "not base64");
  out.resize(len);
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  char hex[2 * sizeof h + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

Result<std::string> cloud_config(const std::vector<FileToPlace>& files, const UserDataOptions& o) {
  using nlohmann::json;
  if (sodium_init() < 0) return Error::make("internal", "libsodium failed to initialise");
  json write = json::array();
  json run = json::array();
  std::string agent_sha;
  for (const auto& f : files) {
    if (f.path.empty() || f.path[0] != '/' || f.path.find("..") != std::string::npos)
      return Error::invalid("files", "not an absolute path: " + f.path);
    char mode[8];
    std::snprintf(mode, sizeof mode, "0%o", f.mode & 07777);
    if (f.path == kAgentPath) {
      agent_sha = sha256_hex(f.content);  // fetched by the instance, not inlined
      continue;
    }
    write.push_back({{"path", f.path},
                     {"encoding", "b64"},
                     {"content", base64(f.content)},
                     {"permissions", mode},
                     {"owner", "root:root"}});
  }
  write.push_back({{"path", "/etc/systemd/system/ads-agent.service"},
                   {"permissions", "0644"},
                   {"content",
                    "[Unit]\nDescription=ADS agent\nAfter=network-online.target\nWants=network-online.target\n\n"
                    "[Service]\nExecStart=/usr/local/bin/ads-agent --config /etc/ads-agent/agent.json\n"
                    "Restart=always\nRestartSec=2\n\n[Install]\nWantedBy=multi-user.target\n"}});
  if (!agent_sha.empty() && !o.agent_in_image) {
    if (o.agent_url.empty())
      return Error::invalid("agent_url",
                            "the aws provider needs agent_url (where instances download ads-agent from) or "
                            "agent_in_image: true (an AMI with /usr/local/bin/ads-agent)");
    if (o.agent_url.rfind("https://", 0) != 0 && o.agent_url.rfind("http://", 0) != 0)
      return Error::invalid("agent_url", "agent_url must be an http(s) URL");
    write.push_back({{"path", "/etc/ads-agent/ads-agent.sha256"},
                     {"permissions", "0644"},
                     {"content", agent_sha + "  /usr/local/bin/ads-agent.download\n"}});
    // constant script; the URL is its first argument, never spliced into it
    const char* fetch_agent =
        "set -e; curl -fsS --retry 5 -o /usr/local/bin/ads-agent.download \"$1\"; "
        "sha256sum -c /etc/ads-agent/ads-agent.sha256; "
        "install -m 0755 /usr/local/bin/ads-agent.download /usr/local/bin/ads-agent; "
        "rm -f /usr/local/bin/ads-agent.download";
    run.push_back({"sh", "-c", fetch_agent, "ads-fetch-agent", o.agent_url});
  }
  run.push_back({"systemctl", "daemon-reload"});
  run.push_back({"systemctl", "enable", "--now", "ads-agent.service"});
  json doc = {{"write_files", write}, {"runcmd", run}};
  std::string out = "#cloud-config\n" + doc.dump() + "\n";
  if (out.size() > kMaxUserData)
    return Error::invalid("files", "the machine's files make " + std::to_string(out.size()) +
                                       " bytes of user data; EC2 takes at most 16384");
  return out;
}

}  // namespace ads::aws
