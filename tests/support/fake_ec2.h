// Test support: a local stand-in for Amazon EC2 (the Query API, API version
// 2016-11-15) and the instance metadata service (IMDSv2) on one loopback
// HTTP server. Every EC2 request's SigV4 signature is checked with the
// independent verifier (sigv4_verifier.h); a bad one gets AWS's
// SignatureDoesNotMatch / AuthFailure answer. Answers are the XML documents
// AWS documents for RunInstances, DescribeInstances, Start/Stop/Terminate-
// Instances, CreateImage, DescribeImages, DeregisterImage, and the
// <Response><Errors><Error> form for errors.
//
// State changes advance on each DescribeInstances / DescribeImages (pending ->
// running, stopping -> stopped, shutting-down -> terminated, image pending ->
// available), so no test depends on time. Failures are injected per action.
//
// With boot_agents(agent_binary_path), an instance that reaches "running"
// does what its cloud-init user data says, on the host: writes its
// write_files under a per-instance root directory, downloads the agent from
// the URL in its runcmd (this server serves it at /agent/ads-agent) and
// checks it against the SHA-256 file the user data wrote, then runs that
// agent with the written config, listening on the instance's private address
// (127.77.0.N:9089, loopback). Stop kills it, start runs it again, an image
// copies the root directory and an instance launched from it boots the agent
// found there. IMDS's /latest/user-data answers the user data of the running
// instance whose private address the request comes from (a client bound to
// 127.77.0.N plays a process inside that instance). Test code only.
#pragma once

#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/server.h"
#include "support/process.h"
#include "support/sigv4_verifier.h"

namespace ads::test {
namespace sigv4 = ads::testing::sigv4;

class FakeEc2 {
 public:
  struct Call {
    std::string action;
    std::map<std::string, std::string> params;
    std::string access_key;
  };
  struct Instance {
    std::string id, state, type, image, private_ip, user_data, reason, launch_time, client_token;
    std::map<std::string, std::string> tags;
    std::map<std::string, std::string> params;  // of its RunInstances
    std::filesystem::path root;
    pid_t agent = -1;
    std::string boot_error;
  };
  struct Image {
    std::string id, state, name, instance, snapshot;  // snapshot: the EBS snapshot of its root device
    std::map<std::string, std::string> tags;
    std::filesystem::path root;
  };
  struct Snapshot {
    std::string id, image;  // image: the AMI it was made for (it outlives the AMI, as on AWS)
    std::map<std::string, std::string> tags;
  };
  struct Injected {
    std::string action;  // "*" : any
    int status;
    std::string code, message;
    int skip = 0;  // matching requests let through first
  };

  static constexpr const char* kRegion = "us-east-1";

  FakeEc2() : server_(http::ServerOptions{}) {
    if (sodium_init() < 0) std::abort();
    server_.set_filter([this](http::Request& r) -> std::optional<http::Response> { return handle(r); });
    auto st = server_.start();
    if (!st.ok()) start_error_ = st.error().message;
  }
  ~FakeEc2() {
    server_.stop();
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, i] : instances_) kill_agent(i);
  }

  std::string start_error() const { return start_error_; }
  uint16_t port() const { return server_.port(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()) + "/"; }
  std::string imds_endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }
  std::string agent_url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/agent/ads-agent"; }

  // Long-term keys EC2 accepts (a session token, when given, must come too).
  void add_key(const std::string& access_key, const std::string& secret, const std::string& token = "") {
    std::lock_guard<std::mutex> l(mu_);
    keys_[access_key] = {secret, token};
  }
  // The instance role IMDS hands out; each call issues new keys (the old ones
  // stop working) expiring at `expiration` (ISO 8601).
  void set_role(const std::string& role, const std::string& expiration) {
    std::lock_guard<std::mutex> l(mu_);
    role_ = role;
    role_expiration_ = expiration;
  }
  // Every IMDS session token issued so far stops working (401).
  void expire_imds_tokens() {
    std::lock_guard<std::mutex> l(mu_);
    imds_tokens_.clear();
  }
  // The next request(s) for `action` ("*": any), after `skip` of them, get
  // this error instead.
  void inject(const std::string& action, int status, const std::string& code, const std::string& message, int times = 1,
              int skip = 0) {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < times; ++i) injected_.push_back({action, status, code, message, i == 0 ? skip : 0});
  }
  // Instances launched from now on go pending -> terminated with this reason.
  void fail_launches(const std::string& reason) {
    std::lock_guard<std::mutex> l(mu_);
    fail_launch_reason_ = reason;
  }
  // Instances reaching "running" run their user data (see above).
  void boot_agents(const std::string& agent_binary, const std::filesystem::path& dir) {
    std::lock_guard<std::mutex> l(mu_);
    std::ifstream in(agent_binary, std::ios::binary);
    agent_bytes_.assign(std::istreambuf_iterator<char>(in), {});
    boot_dir_ = dir;
  }

  std::vector<Call> calls() const {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  std::vector<Call> calls_of(const std::string& action) const {
    std::vector<Call> out;
    for (auto& c : calls())
      if (c.action == action) out.push_back(c);
    return out;
  }
  int rejected() const {
    std::lock_guard<std::mutex> l(mu_);
    return rejected_;
  }
  std::vector<std::string> rejections() const {
    std::lock_guard<std::mutex> l(mu_);
    return rejections_;
  }
  std::vector<Instance> instances() const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Instance> out;
    for (auto& [id, i] : instances_) out.push_back(i);
    return out;
  }
  std::vector<Instance> instances_in(const std::string& state) const {
    std::vector<Instance> out;
    for (auto& i : instances())
      if (i.state == state) out.push_back(i);
    return out;
  }
  std::optional<Instance> instance(const std::string& id) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = instances_.find(id);
    if (it == instances_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Image> images() const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Image> out;
    for (auto& [id, i] : images_) out.push_back(i);
    return out;
  }
  std::vector<Snapshot> snapshots() const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Snapshot> out;
    for (auto& [id, sn] : snapshots_) out.push_back(sn);
    return out;
  }
  // Brings every instance / image to its next settled state at once.
  void settle() {
    std::lock_guard<std::mutex> l(mu_);
    advance_all();
  }
  int imds_token_requests() const {
    std::lock_guard<std::mutex> l(mu_);
    return imds_token_requests_;
  }
  int role_requests() const {
    std::lock_guard<std::mutex> l(mu_);
    return role_requests_;
  }

  static std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        default:
          out.push_back(c);
      }
    }
    return out;
  }
  static std::string error_xml(const std::string& code, const std::string& message) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + xml_escape(code) +
           "</Code><Message>" + xml_escape(message) +
           "</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>";
  }

 private:
  struct Key {
    std::string secret, token;
  };

  static http::Response xml(int status, std::string body) {
    http::Response r;
    r.status = status;
    r.content_type = "text/xml;charset=UTF-8";
    r.body = std::move(body);
    return r;
  }
  static http::Response text(int status, std::string body, const std::string& type = "text/plain") {
    http::Response r;
    r.status = status;
    r.content_type = type;
    r.body = std::move(body);
    return r;
  }
  static std::string random_hex(size_t n) {
    std::string raw(n, '\0');
    randombytes_buf(raw.data(), n);
    return sigv4::hex(reinterpret_cast<const unsigned char*>(raw.data()), n);
  }
  static std::map<std::string, std::string> parse_form(const std::string& body) {
    std::map<std::string, std::string> out;
    std::stringstream ss(body);
    std::string part;
    while (std::getline(ss, part, '&')) {
      auto eq = part.find('=');
      std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
      for (auto* s : {&k, &v})
        for (auto& c : *s)
          if (c == '+') c = ' ';
      out[sigv4::percent_decode(k)] = sigv4::percent_decode(v);
    }
    return out;
  }

  std::optional<http::Response> handle(http::Request& r) {
    if (r.path == "/agent/ads-agent" && r.method == "GET") return text(200, agent_bytes_, "application/octet-stream");
    if (r.path.rfind("/latest/", 0) == 0) return imds(r);
    std::lock_guard<std::mutex> l(mu_);
    if (r.method != "POST" || r.path != "/")
      return xml(400, error_xml("InvalidAction", "not an EC2 Query API request"));
    auto verdict = sigv4::verify(r.method, r.target, r.headers, r.body, kRegion, "ec2", [this](const std::string& k) {
      auto it = keys_.find(k);
      return it == keys_.end() ? std::string() : it->second.secret;
    });
    if (!verdict.ok) {
      ++rejected_;
      rejections_.push_back(verdict.why);
      if (verdict.why == "unknown access key")
        return xml(401, error_xml("AuthFailure", "AWS was not able to validate the provided access credentials"));
      return xml(403, error_xml("SignatureDoesNotMatch",
                                "The request signature we calculated does not match the signature you provided. "
                                "Check your AWS Secret Access Key and signing method. Consult the service "
                                "documentation for details."));
    }
    const Key& key = keys_[verdict.access_key];
    if (!key.token.empty() && r.header("x-amz-security-token") != key.token) {
      ++rejected_;
      rejections_.push_back("session token missing or wrong");
      return xml(401, error_xml("AuthFailure", "AWS was not able to validate the provided access credentials"));
    }
    auto p = parse_form(r.body);
    std::string action = p["Action"];
    calls_.push_back({action, p, verdict.access_key});
    if (p["Version"] != "2016-11-15") return xml(400, error_xml("InvalidParameterValue", "unsupported Version"));
    if (!injected_.empty() && (injected_.front().action == action || injected_.front().action == "*") &&
        injected_.front().skip > 0) {
      --injected_.front().skip;
    } else if (!injected_.empty() && (injected_.front().action == action || injected_.front().action == "*")) {
      auto e = injected_.front();
      injected_.pop_front();
      return xml(e.status, error_xml(e.code, e.message));
    }
    if (action == "RunInstances") return run_instances(p);
    if (action == "DescribeInstances") return describe_instances(p);
    if (action == "StartInstances") return change(p, "StartInstancesResponse");
    if (action == "StopInstances") return change(p, "StopInstancesResponse");
    if (action == "TerminateInstances") return change(p, "TerminateInstancesResponse");
    if (action == "CreateImage") return create_image(p);
    if (action == "DescribeImages") return describe_images(p);
    if (action == "DeregisterImage") return deregister_image(p);
    if (action == "DescribeSnapshots") return describe_snapshots(p);
    if (action == "DeleteSnapshot") return delete_snapshot(p);
    return xml(400, error_xml("InvalidAction", "The action " + action + " is not valid for this web service."));
  }

  http::Response imds(http::Request& r) {
    std::lock_guard<std::mutex> l(mu_);
    if (r.path == "/latest/api/token") {
      if (r.method != "PUT") return text(405, "");
      int ttl = std::atoi(r.header("x-aws-ec2-metadata-token-ttl-seconds").c_str());
      if (ttl < 1 || ttl > 21600) return text(400, "");
      ++imds_token_requests_;
      std::string t = "imds-" + random_hex(16);
      imds_tokens_.insert(t);
      return text(200, t);
    }
    if (!imds_tokens_.count(r.header("x-aws-ec2-metadata-token"))) return text(401, "");
    if (r.path == "/latest/user-data") {
      // as on EC2, from inside the instance: the one whose address asks
      for (auto& [id, i] : instances_)
        if (i.private_ip == r.remote && i.state == "running") {
          if (i.user_data.empty()) return text(404, "");
          return text(200, decode64(i.user_data), "application/octet-stream");
        }
      return text(404, "");
    }
    const std::string base = "/latest/meta-data/iam/security-credentials/";
    if (role_.empty()) return text(404, "");
    if (r.path == base) return text(200, role_);
    if (r.path == base + role_) {
      ++role_requests_;
      if (!role_key_.empty()) keys_.erase(role_key_);  // the previous credentials stop working
      role_key_ = "ASIAFAKE" + random_hex(6);
      Key k{random_hex(20), "IQoJb3JpZ2luX2VjE" + random_hex(40)};
      keys_[role_key_] = k;
      nlohmann::json j = {{"Code", "Success"},
                          {"LastUpdated", "2026-11-25T09:00:00Z"},
                          {"Type", "AWS-HMAC"},
                          {"AccessKeyId", role_key_},
                          {"SecretAccessKey", k.secret},
                          {"Token", k.token},
                          {"Expiration", role_expiration_}};
      return text(200, j.dump(2), "text/plain");
    }
    return text(404, "");
  }

  static std::string head(const std::string& element) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<" + element +
           " xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</"
           "requestId>";
  }
  static int state_code(const std::string& s) {
    static const std::map<std::string, int> c = {{"pending", 0},     {"running", 16},  {"shutting-down", 32},
                                                 {"terminated", 48}, {"stopping", 64}, {"stopped", 80}};
    return c.count(s) ? c.at(s) : 0;
  }
  static std::string state_xml(const std::string& element, const std::string& s) {
    return "<" + element + "><code>" + std::to_string(state_code(s)) + "</code><name>" + s + "</name></" + element +
           ">";
  }
  static std::string tags_xml(const std::map<std::string, std::string>& tags) {
    std::string out = "<tagSet>";
    for (auto& [k, v] : tags)
      out += "<item><key>" + xml_escape(k) + "</key><value>" + xml_escape(v) + "</value></item>";
    return out + "</tagSet>";
  }
  std::string instance_xml(const Instance& i) const {
    std::string out = "<item><instanceId>" + i.id + "</instanceId><imageId>" + xml_escape(i.image) + "</imageId>" +
                      state_xml("instanceState", i.state) + "<privateDnsName>ip-" + i.private_ip +
                      ".ec2.internal</privateDnsName><instanceType>" + xml_escape(i.type) +
                      "</instanceType><launchTime>" + i.launch_time + "</launchTime>";
    if (i.state != "terminated" && i.state != "shutting-down")
      out += "<privateIpAddress>" + i.private_ip + "</privateIpAddress>";
    if (!i.reason.empty())
      out +=
          "<stateReason><code>Server.InternalError</code><message>" + xml_escape(i.reason) + "</message></stateReason>";
    return out + tags_xml(i.tags) + "</item>";
  }

  // Tags of TagSpecification.N with ResourceType == type.
  static std::map<std::string, std::string> tag_spec(std::map<std::string, std::string>& p, const std::string& type) {
    std::map<std::string, std::string> tags;
    for (int n = 1; p.count("TagSpecification." + std::to_string(n) + ".ResourceType"); ++n) {
      std::string base = "TagSpecification." + std::to_string(n);
      if (p[base + ".ResourceType"] != type) continue;
      for (int t = 1; p.count(base + ".Tag." + std::to_string(t) + ".Key"); ++t)
        tags[p[base + ".Tag." + std::to_string(t) + ".Key"]] = p[base + ".Tag." + std::to_string(t) + ".Value"];
    }
    return tags;
  }

  http::Response run_instances(std::map<std::string, std::string>& p) {
    for (const char* need : {"ImageId", "InstanceType", "MinCount", "MaxCount"})
      if (p[need].empty())
        return xml(400, error_xml("MissingParameter", std::string("The request must contain the parameter ") + need));
    if (p["MinCount"] != "1" || p["MaxCount"] != "1")
      return xml(400, error_xml("InvalidParameterCombination", "this fake launches one instance at a time"));
    std::string token = p["ClientToken"];
    if (!token.empty())
      for (auto& [id, i] : instances_)
        if (i.client_token == token)  // idempotent: the same launch again
          return xml(200, head("RunInstancesResponse") + "<reservationId>r-" + id.substr(2) +
                              "</reservationId><ownerId>111122223333</ownerId><instancesSet>" + instance_xml(i) +
                              "</instancesSet></RunInstancesResponse>");
    std::string ami = p["ImageId"];
    std::filesystem::path from;
    if (images_.count(ami)) {
      if (images_[ami].state != "available")
        return xml(400, error_xml("InvalidAMIID.Unavailable", "AMI " + ami + " is not available"));
      from = images_[ami].root;
    } else if (ami.rfind("ami-", 0) != 0) {
      return xml(400, error_xml("InvalidAMIID.Malformed", "Invalid id: \"" + ami + "\""));
    }
    if (!p["UserData"].empty() && p["UserData"].size() > 21848)  // 16 KB, base64
      return xml(400, error_xml("InvalidParameterValue", "User data is limited to 16384 bytes"));
    Instance i;
    ++seq_;
    char id[32];
    std::snprintf(id, sizeof id, "i-%017x", 0xabc000 + seq_);
    i.id = id;
    i.state = "pending";
    i.type = p["InstanceType"];
    i.image = ami;
    i.private_ip = "127.77.0." + std::to_string(10 + seq_);
    i.user_data = p["UserData"];
    i.client_token = token;
    char lt[32];
    std::snprintf(lt, sizeof lt, "2026-11-25T09:%02d:%02d.000Z", (seq_ / 60) % 60, seq_ % 60);
    i.launch_time = lt;
    i.tags = tag_spec(p, "instance");
    i.params = p;
    if (!fail_launch_reason_.empty()) i.reason = fail_launch_reason_;
    if (!boot_dir_.empty()) {
      i.root = boot_dir_ / i.id;
      std::filesystem::create_directories(i.root);
      if (!from.empty()) std::filesystem::copy(from, i.root, std::filesystem::copy_options::recursive);
    }
    instances_[i.id] = i;
    return xml(200, head("RunInstancesResponse") + "<reservationId>r-" + i.id.substr(2) +
                        "</reservationId><ownerId>111122223333</ownerId><groupSet/><instancesSet>" + instance_xml(i) +
                        "</instancesSet></RunInstancesResponse>");
  }

  static std::vector<std::string> indexed(std::map<std::string, std::string>& p, const std::string& prefix) {
    std::vector<std::string> out;
    for (int n = 1; p.count(prefix + std::to_string(n)); ++n) out.push_back(p[prefix + std::to_string(n)]);
    return out;
  }
  // Filter.N.Name / Filter.N.Value.M
  static std::vector<std::pair<std::string, std::vector<std::string>>> filters(std::map<std::string, std::string>& p) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (int n = 1; p.count("Filter." + std::to_string(n) + ".Name"); ++n)
      out.push_back(
          {p["Filter." + std::to_string(n) + ".Name"], indexed(p, "Filter." + std::to_string(n) + ".Value.")});
    return out;
  }
  static bool matches(const std::vector<std::pair<std::string, std::vector<std::string>>>& fs,
                      const std::map<std::string, std::string>& tags, const std::string& state) {
    for (const auto& filter : fs) {
      const std::string& name = filter.first;
      const std::vector<std::string>& values = filter.second;
      auto has = [&](const std::string& v) { return std::find(values.begin(), values.end(), v) != values.end(); };
      if (name == "instance-state-name") {
        if (!has(state)) return false;
      } else if (name == "tag-key") {
        bool any = false;
        for (auto& v : values) any = any || tags.count(v);
        if (!any) return false;
      } else if (name.rfind("tag:", 0) == 0) {
        auto it = tags.find(name.substr(4));
        if (it == tags.end() || !has(it->second)) return false;
      } else {
        return false;  // a filter this fake does not know matches nothing
      }
    }
    return true;
  }

  void boot(Instance& i) {
    if (boot_dir_.empty()) return;
    namespace fs = std::filesystem;
    i.boot_error.clear();
    if (!i.user_data.empty() && !fs::exists(i.root / "var/lib/cloud/instance/boot-finished")) {
      auto raw = decode64(i.user_data);
      const std::string head = "#cloud-config\n";
      if (raw.rfind(head, 0) != 0) {
        i.boot_error = "user data is not #cloud-config";
        return;
      }
      auto doc = nlohmann::json::parse(raw.substr(head.size()), nullptr, false);
      if (!doc.is_object()) {
        i.boot_error = "user data is not JSON";
        return;
      }
      for (auto& f : doc.value("write_files", nlohmann::json::array())) {
        fs::path path = i.root / f.value("path", "/x").substr(1);
        fs::create_directories(path.parent_path());
        std::string content = f.value("content", "");
        if (f.value("encoding", "") == "b64") content = decode64(content);
        std::ofstream(path, std::ios::binary) << content;
        fs::permissions(path, static_cast<fs::perms>(std::stoi(f.value("permissions", "0644"), nullptr, 8)));
      }
      for (auto& cmd : doc.value("runcmd", nlohmann::json::array())) {
        // the agent download: ["sh", "-c", SCRIPT, NAME, URL]
        if (!cmd.is_array() || cmd.size() != 5 || cmd[0] != "sh") continue;
        http::ClientRequest hr;
        hr.url = cmd[4].get<std::string>();
        auto res = http::request(hr);
        if (!res || res->status != 200) {
          i.boot_error = "agent download failed";
          return;
        }
        std::ifstream shaf(i.root / "etc/ads-agent/ads-agent.sha256");
        std::string want;
        shaf >> want;
        if (want != sha256_hex(res->body)) {
          i.boot_error = "agent checksum mismatch";
          return;
        }
        fs::create_directories(i.root / "usr/local/bin");
        std::ofstream(i.root / "usr/local/bin/ads-agent", std::ios::binary) << res->body;
        fs::permissions(i.root / "usr/local/bin/ads-agent", fs::perms::owner_all);
      }
      fs::create_directories(i.root / "var/lib/cloud/instance");
      std::ofstream(i.root / "var/lib/cloud/instance/boot-finished") << "ok\n";
    }
    // systemd: the unit starts the agent with its config, on this "host"
    auto cfg = nlohmann::json::parse(slurp(i.root / "etc/ads-agent/agent.json"), nullptr, false);
    if (!cfg.is_object() || !fs::exists(i.root / "usr/local/bin/ads-agent")) {
      i.boot_error = "no agent or agent config on the disk";
      return;
    }
    cfg["host"] = i.private_ip;
    if (cfg.contains("secret_file") && cfg["secret_file"].is_string())
      cfg["secret_file"] = (i.root / cfg["secret_file"].get<std::string>().substr(1)).string();
    cfg["lab_dir"] = (i.root / "opt/lab").string();
    cfg["backup_dir"] = (i.root / "var/lib/ads-agent/backup").string();
    std::ofstream(i.root / "agent.local.json") << cfg.dump();
    std::string bin = (i.root / "usr/local/bin/ads-agent").string(), conf = (i.root / "agent.local.json").string();
    pid_t pid = fork();
    if (pid == 0) {
      setsid();
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      execl(bin.c_str(), bin.c_str(), "--config", conf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    i.agent = pid;
  }
  // Power off: the agent, and every process working inside the instance's
  // root (what the lab's actions started, in sessions of their own).
  static void kill_agent(Instance& i) {
    if (i.agent > 0) {
      ::kill(-i.agent, SIGKILL);
      ::kill(i.agent, SIGKILL);
      waitpid(i.agent, nullptr, 0);
      i.agent = -1;
    }
    if (i.root.empty()) return;
    std::string root = std::filesystem::weakly_canonical(i.root).string() + "/";
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::error_code ec2;
      auto cwd = std::filesystem::read_symlink(e.path() / "cwd", ec2);
      if (!ec2 && (cwd.string() + "/").rfind(root, 0) == 0) ::kill(std::stoi(name), SIGKILL);
    }
  }
  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static std::string decode64(const std::string& s) {
    std::string out(s.size(), '\0');
    size_t len = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(), s.size(), "\n", &len,
                          nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
      return "";
    out.resize(len);
    return out;
  }
  static std::string sha256_hex(const std::string& data) { return sigv4::sha256_hex(data); }

  void advance(Instance& i) {
    if (i.state == "pending") {
      if (!i.reason.empty()) {
        i.state = "terminated";
      } else {
        i.state = "running";
        boot(i);
      }
    } else if (i.state == "stopping") {
      i.state = "stopped";
    } else if (i.state == "shutting-down") {
      i.state = "terminated";
    }
  }
  void advance_all() {
    for (auto& [id, i] : instances_) advance(i);
    for (auto& [id, im] : images_)
      if (im.state == "pending") im.state = "available";
  }

  http::Response describe_instances(std::map<std::string, std::string>& p) {
    auto ids = indexed(p, "InstanceId.");
    auto fs = filters(p);
    std::string items;
    for (auto& [id, i] : instances_) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
      advance(i);
      if (!matches(fs, i.tags, i.state)) continue;
      items += "<item><reservationId>r-" + id.substr(2) +
               "</reservationId><ownerId>111122223333</ownerId>"
               "<groupSet/><instancesSet>" +
               instance_xml(i) + "</instancesSet></item>";
    }
    for (auto& id : ids)
      if (!instances_.count(id))
        return xml(400, error_xml("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"));
    return xml(200, head("DescribeInstancesResponse") + "<reservationSet>" + items +
                        "</reservationSet></DescribeInstancesResponse>");
  }

  http::Response change(std::map<std::string, std::string>& p, const std::string& element) {
    auto ids = indexed(p, "InstanceId.");
    if (ids.empty())
      return xml(400, error_xml("MissingParameter", "The request must contain the parameter InstanceId"));
    for (auto& id : ids)
      if (!instances_.count(id))
        return xml(400, error_xml("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"));
    std::string items;
    for (auto& id : ids) {
      Instance& i = instances_[id];
      std::string before = i.state;
      if (element == "TerminateInstancesResponse") {
        if (i.state != "terminated") i.state = "shutting-down";
        kill_agent(i);
      } else if (element == "StopInstancesResponse") {
        if (i.state == "terminated" || i.state == "shutting-down")
          return xml(400, error_xml("IncorrectInstanceState",
                                    "The instance '" + id + "' is not in a state from which it can be stopped."));
        if (i.state == "running" || i.state == "pending") i.state = "stopping";
        kill_agent(i);
      } else {
        if (i.state != "stopped" && i.state != "running")
          return xml(400, error_xml("IncorrectInstanceState",
                                    "The instance '" + id + "' is not in a state from which it can be started."));
        if (i.state == "stopped") i.state = "pending";
      }
      items += "<item><instanceId>" + id + "</instanceId>" + state_xml("currentState", i.state) +
               state_xml("previousState", before) + "</item>";
    }
    std::string tail = "</" + element.substr(0, element.size()) + ">";
    return xml(200, head(element) + "<instancesSet>" + items + "</instancesSet>" + tail);
  }

  http::Response create_image(std::map<std::string, std::string>& p) {
    std::string id = p["InstanceId"];
    if (!instances_.count(id))
      return xml(400, error_xml("InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"));
    if (p["Name"].size() < 3)
      return xml(400, error_xml("InvalidAMIName.Malformed", "AMI names must be at least 3 characters"));
    for (auto& [k, im] : images_)
      if (im.name == p["Name"])
        return xml(400,
                   error_xml("InvalidAMIName.Duplicate", "AMI name " + p["Name"] + " is already in use by AMI " + k));
    Image im;
    char ami[32];
    std::snprintf(ami, sizeof ami, "ami-%017x", 0xdef000 + ++seq_);
    im.id = ami;
    im.state = "pending";
    im.name = p["Name"];
    im.instance = id;
    im.tags = tag_spec(p, "image");
    if (!boot_dir_.empty()) {
      im.root = boot_dir_ / im.id;
      std::filesystem::create_directories(im.root);
      std::filesystem::copy(instances_[id].root, im.root, std::filesystem::copy_options::recursive);
    }
    Snapshot sn;
    std::snprintf(ami, sizeof ami, "snap-%017x", 0x5a0000 + seq_);
    sn.id = ami;
    sn.image = im.id;
    sn.tags = tag_spec(p, "snapshot");
    snapshots_[sn.id] = sn;
    im.snapshot = sn.id;
    images_[im.id] = im;
    return xml(200, head("CreateImageResponse") + "<imageId>" + im.id + "</imageId></CreateImageResponse>");
  }

  http::Response describe_images(std::map<std::string, std::string>& p) {
    auto ids = indexed(p, "ImageId.");
    auto fs = filters(p);
    std::string items;
    for (auto& [id, im] : images_) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
      if (!ids.empty() && im.state == "pending") im.state = "available";
      if (!matches(fs, im.tags, "")) continue;
      items += "<item><imageId>" + id + "</imageId><imageLocation>111122223333/" + xml_escape(im.name) +
               "</imageLocation><imageState>" + im.state +
               "</imageState><imageOwnerId>111122223333</imageOwnerId>"
               "<name>" +
               xml_escape(im.name) +
               "</name><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda"
               "</rootDeviceName><blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>" +
               im.snapshot +
               "</snapshotId><volumeSize>8</volumeSize><deleteOnTermination>true</deleteOnTermination>"
               "<volumeType>gp3</volumeType></ebs></item></blockDeviceMapping>" +
               tags_xml(im.tags) + "</item>";
    }
    return xml(200, head("DescribeImagesResponse") + "<imagesSet>" + items + "</imagesSet></DescribeImagesResponse>");
  }

  // As on AWS: deregistering an AMI keeps its EBS snapshot; a snapshot an AMI
  // still uses cannot be deleted.
  http::Response deregister_image(std::map<std::string, std::string>& p) {
    std::string id = p["ImageId"];
    if (!images_.count(id))
      return xml(400, error_xml("InvalidAMIID.NotFound", "The image id '[" + id + "]' does not exist"));
    images_.erase(id);
    return xml(200, head("DeregisterImageResponse") + "<return>true</return></DeregisterImageResponse>");
  }

  http::Response describe_snapshots(std::map<std::string, std::string>& p) {
    auto ids = indexed(p, "SnapshotId.");
    auto fs = filters(p);
    std::string items;
    for (auto& [id, sn] : snapshots_) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
      if (!matches(fs, sn.tags, "")) continue;
      items += "<item><snapshotId>" + id +
               "</snapshotId><volumeId>vol-ffffffff</volumeId><status>completed</status>"
               "<progress>100%</progress><ownerId>111122223333</ownerId><volumeSize>8</volumeSize><description>"
               "Created by CreateImage for " +
               xml_escape(sn.image) + "</description>" + tags_xml(sn.tags) + "</item>";
    }
    return xml(200, head("DescribeSnapshotsResponse") + "<snapshotSet>" + items +
                        "</snapshotSet></DescribeSnapshotsResponse>");
  }

  http::Response delete_snapshot(std::map<std::string, std::string>& p) {
    std::string id = p["SnapshotId"];
    if (!snapshots_.count(id))
      return xml(400, error_xml("InvalidSnapshot.NotFound", "The snapshot '" + id + "' does not exist."));
    for (auto& [k, im] : images_)
      if (im.snapshot == id)
        return xml(400, error_xml("InvalidSnapshot.InUse", "The snapshot " + id + " is currently in use by " + k));
    snapshots_.erase(id);
    return xml(200, head("DeleteSnapshotResponse") + "<return>true</return></DeleteSnapshotResponse>");
  }

  http::Server server_;
  std::string start_error_;
  mutable std::mutex mu_;
  std::map<std::string, Key> keys_;
  std::string role_, role_expiration_ = "2036-01-01T00:00:00Z", role_key_;
  std::set<std::string> imds_tokens_;
  int imds_token_requests_ = 0, role_requests_ = 0;
  std::deque<Injected> injected_;
  std::string fail_launch_reason_;
  std::vector<Call> calls_;
  int rejected_ = 0;
  std::vector<std::string> rejections_;
  std::map<std::string, Instance> instances_;
  std::map<std::string, Image> images_;
  std::map<std::string, Snapshot> snapshots_;
  int seq_ = 0;
  std::string agent_bytes_;
  std::filesystem::path boot_dir_;
};

}  // namespace ads::test
