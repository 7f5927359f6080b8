#include "agent/server.h"

#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/identity.h"
#include "agent/runner.h"
#include "agent/secret_file.h"
#include "core/ansible_run.h"
#include "core/lab_tree.h"
#include "core/names.h"
#include "engine/durable_file.h"
#include "http/tls_mbedtls.h"

namespace ads::agent {
namespace fs = std::filesystem;
using http::Request;
using http::Response;
using nlohmann::json;

namespace {
int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The first symbolic link under `dir` that leads out of it ("name -> target",
// printable), if any.
std::optional<std::string> first_escaping_link(const std::string& dir) {
  const fs::path root(dir);
  auto read_link = [&root](const std::string& rel) -> std::optional<std::string> {
    std::error_code ec;
    fs::path p = root / rel;
    if (!fs::is_symlink(fs::symlink_status(p, ec))) return std::nullopt;
    auto t = fs::read_symlink(p, ec);
    if (ec) return std::nullopt;
    return t.string();
  };
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string rel = it->path().lexically_relative(root).generic_string();
    auto target = read_link(rel);
    if (target && !link_stays_inside(rel, *target, read_link)) return printable(rel) + " -> " + printable(*target);
  }
  return std::nullopt;
}

// The archive of the last lab uploaded is kept beside the lab's directory, as
// it came: a controller-mode playbook action after the deploy (backup,
// restore, test...) runs from these files (GET /v1/lab), not from the source
// fetched again, which may have moved on or be gone.
std::string kept_lab_archive(const AgentConfig& c) { return c.lab_dir + ".tar.gz"; }

// The spec of the lab unpacked in `dir` (v2, else v1); "invalid" naming the
// field, or "spec" when there is none.
Result<LabSpec> unpacked_spec(const std::string& dir) {
  std::error_code ec;
  for (const char* rel : {kSpecV2Path, kSpecV1Path}) {
    fs::path p = fs::path(dir) / rel;
    if (!fs::is_regular_file(p, ec)) continue;
    auto r = parse_labspec(rel, read_file(p.string()));
    if (!r) return Error::invalid(r.error().field, std::string(rel) + ": " + r.error().message);
    return r;
  }
  return Error::invalid("spec", std::string("the lab has no ") + kSpecV2Path + " or " + kSpecV1Path);
}

// RAII flag: one upload or action at a time.
class BusyGuard {
 public:
  explicit BusyGuard(std::atomic<bool>& b) : b_(b) { got_ = !b_.exchange(true); }
  ~BusyGuard() {
    if (got_) b_ = false;
  }
  bool got() const { return got_; }
  // Frees the flag before the guard ends (e.g. before a stream's last line,
  // so that a client that has read it may start the next action at once).
  void release() {
    if (got_) b_ = false;
    got_ = false;
  }

 private:
  std::atomic<bool>& b_;
  bool got_;
};
// HTTPS only, with the certificate derived from the secret (identity.h);
// when it cannot be made, no certificate: start() then refuses to run.
http::ServerOptions server_options(const AgentConfig& c) {
  http::ServerOptions o;
  o.host = c.host;
  o.port = c.port;
  o.max_body_bytes = c.max_upload_bytes;
  o.max_connections = 16;
  o.idle_threads = 2;  // ADS talks to its agent a request at a time; an idle thread costs memory in the lab
  o.read_timeout_s = 300;
  o.request_timeout_ms = 30 * 60 * 1000;  // a lab archive or a backup coming up a slow link
  auto id = agent_identity(c.secret);
  if (id) {
    o.tls_cert_pem = id->cert_pem;
    o.tls_backend = http::mbedtls_tls;
    o.tls_key_pem = id->key_pem;
  }
  return o;
}
}  // namespace

double machine_uptime(const std::string& proc_uptime, const std::string& init_stat, long ticks_per_s) {
  double up = 0;
  std::istringstream(proc_uptime) >> up;
  // the fields after the command name, which sits in parentheses and may hold spaces
  auto close = init_stat.rfind(')');
  if (close == std::string::npos || ticks_per_s <= 0) return up;
  std::istringstream rest(init_stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && (rest >> field); ++i) {
    if (i < 22) continue;
    if (field.empty() || field.find_first_not_of("0123456789") != std::string::npos) return up;
    double started = std::stod(field) / static_cast<double>(ticks_per_s);
    return started <= up ? up - started : up;
  }
  return up;
}

Result<AgentConfig> parse_agent_config(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid("config", "not a JSON object");
  AgentConfig c;
  if (!j.contains("secret") || !j["secret"].is_string()) return Error::invalid("secret", "is required");
  c.secret = j["secret"];
  if (c.secret.size() < 32) return Error::invalid("secret", "must be at least 32 characters");
  if (j.contains("host")) {
    if (!j["host"].is_string()) return Error::invalid("host", "must be a string");
    c.host = j["host"];
  }
  if (j.contains("port")) {
    if (!j["port"].is_number_integer() || j["port"].get<int>() < 0 || j["port"].get<int>() > 65535)
      return Error::invalid("port", "must be 0-65535");
    c.port = static_cast<uint16_t>(j["port"].get<int>());
  }
  if (j.contains("secret_file")) {
    if (!j["secret_file"].is_string() || j["secret_file"].get<std::string>().empty() ||
        j["secret_file"].get<std::string>()[0] != '/')
      return Error::invalid("secret_file", "must be an absolute path");
    c.secret_file = j["secret_file"];
  }
  if (j.contains("lab_dir")) {
    if (!j["lab_dir"].is_string() || j["lab_dir"].get<std::string>().empty() ||
        j["lab_dir"].get<std::string>()[0] != '/')
      return Error::invalid("lab_dir", "must be an absolute path");
    c.lab_dir = j["lab_dir"];
    // lab_dir + ".tar.gz" and lab_dir + ".check" lie beside it, never in it
    while (c.lab_dir.size() > 1 && c.lab_dir.back() == '/') c.lab_dir.pop_back();
    if (c.lab_dir == "/") return Error::invalid("lab_dir", "must not be the root directory");
  }
  if (j.contains("backup_dir")) {
    if (!j["backup_dir"].is_string() || j["backup_dir"].get<std::string>().empty() ||
        j["backup_dir"].get<std::string>()[0] != '/')
      return Error::invalid("backup_dir", "must be an absolute path");
    c.backup_dir = j["backup_dir"];
  }
  auto seconds = [&](const char* key, int max, int& out) -> Status {
    if (!j.contains(key)) return Status::Ok();
    const json& v = j[key];
    if (!v.is_number_integer() || v.get<long long>() < 1 || v.get<long long>() > max)
      return Error::invalid(key, "must be an integer from 1 to " + std::to_string(max) + " (seconds)");
    out = static_cast<int>(v.get<long long>());
    return Status::Ok();
  };
  for (const auto& st : {seconds("command_timeout_s", 7 * 86400, c.command_timeout_s),
                         seconds("heartbeat_s", 3600, c.heartbeat_s), seconds("kill_grace_s", 600, c.kill_grace_s)})
    if (!st) return st.error();
  // who the machine serves: printable, short (they reach commands' environments)
  auto label = [&](const char* key, std::string& out) -> Status {
    if (!j.contains(key)) return Status::Ok();
    if (!j[key].is_string()) return Error::invalid(key, "must be a string");
    std::string v = j[key];
    if (v.size() > 512) return Error::invalid(key, "must be at most 512 characters");
    for (unsigned char ch : v)
      if (ch < 0x21 || ch > 0x7e) return Error::invalid(key, "must be printable ASCII without spaces");
    out = v;
    return Status::Ok();
  };
  for (const auto& st :
       {label("deployment_id", c.deployment_id), label("lab_name", c.lab_name), label("stable_url", c.stable_url)})
    if (!st) return st.error();
  return c;
}

AgentServer::AgentServer(AgentConfig cfg)
    : cfg_(std::move(cfg)),
      server_(server_options(cfg_)),
      secret_(cfg_.secret),
      bootstrap_(!cfg_.secret_file.empty()),
      started_(std::chrono::steady_clock::now()),
      ssh_(cfg_.ssh) {
  server_.set_head_check([this](Request& r, size_t* limit) { return check_head(r, limit); });
  server_.set_filter([this](Request& r) { return authenticate(r); });
  server_.route("GET", "/v1/health", [this](Request&) { return health(); });
  server_.route("PUT", "/v1/lab", [this](Request& r) { return upload(r); });
  server_.route("GET", "/v1/lab", [this](Request&) {
    std::error_code ec;
    const std::string kept = kept_lab_archive(cfg_);
    if (!fs::is_regular_file(fs::symlink_status(kept, ec)))
      return Response::error(404, "not_found", "no lab was uploaded to this agent (" + kept + ")");
    Response r;
    r.content_type = "application/gzip";
    r.body = read_file(kept);
    return r;
  });
  server_.route("POST", "/v1/actions/cancel", [this](Request&) { return cancel(); });  // before {name}
  server_.route("POST", "/v1/actions/{name}", [this](Request& r) { return action(r); });
  server_.route("POST", "/v1/check", [this](Request& r) { return check(r); });
  server_.route("GET", "/v1/backup", [this](Request&) { return get_backup(); });
  server_.route("PUT", "/v1/backup", [this](Request& r) { return put_backup(r); });
  server_.route("POST", "/v1/secret", [this](Request& r) { return replace_secret(r); });
  server_.route("POST", "/v1/ssh", [this](Request& r) { return open_ssh(r); });
  server_.route("DELETE", "/v1/ssh", [this](Request&) { return close_ssh(); });
}

Status AgentServer::start() {
  if (!crypto_init()) return Error::make("internal", "libsodium cannot initialise");
  if (!cfg_.secret_file.empty()) {
    // switched before (then the bootstrap secret is refused), or not yet
    auto kept = read_secret_file(cfg_.secret_file);
    if (!kept) return kept.error();
    if (*kept) {
      auto id = agent_identity(**kept);
      if (!id) return Error::make("internal", "cannot make the agent's TLS certificate: " + id.error().message);
      if (auto st = server_.set_tls_identity(id->cert_pem, id->key_pem); !st) return st;
      std::lock_guard<std::mutex> lk(secret_mu_);
      secret_ = std::move(**kept);
      bootstrap_ = false;
    }
  }
  if (!server_.tls())
    return Error::make("internal",
                       "cannot make the agent's TLS certificate: " + agent_identity(cfg_.secret).error().message);
  // After a restart of the machine, the lab uploaded earlier is still there.
  for (const char* rel : {kSpecV2Path, kSpecV1Path}) {
    fs::path p = fs::path(cfg_.lab_dir) / rel;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    auto r = parse_labspec(rel, read_file(p.string()));
    if (r) spec_ = std::move(r.value());
    break;
  }
  ssh_.reset();  // a key an agent before this one let in is out
  return server_.start();
}

void AgentServer::stop() { server_.stop(); }

namespace {
Response deny(const std::string& why) { return Response::error(401, "unauthorized", "request refused: " + why); }

// The signature headers are there and well formed, and the time is in the window.
std::optional<Response> check_fields(const Request& req) {
  std::string t = req.header("x-ads-time"), nonce = req.header("x-ads-nonce"), sig = req.header("x-ads-signature");
  if (t.empty() || nonce.empty() || sig.empty()) return deny("missing signature headers");
  int64_t ts = 0;
  try {
    size_t used = 0;
    ts = std::stoll(t, &used);
    if (used != t.size()) return deny("bad time header");
  } catch (...) {
    return deny("bad time header");
  }
  int64_t now = unix_now();
  if (ts < now - kMaxSkewSeconds || ts > now + kMaxSkewSeconds) return deny("time outside the allowed window");
  if (nonce.size() < 16 || nonce.size() > 128) return deny("bad nonce");
  return std::nullopt;
}

bool is_sha256_hex(const std::string& h) {
  return h.size() == 64 && h.find_first_not_of("0123456789abcdef") == std::string::npos;
}
}  // namespace

std::optional<Response> AgentServer::check_head(Request& req, size_t* body_limit) {
  if (auto bad = check_fields(req)) return bad;
  std::string hash = req.header("x-ads-body-sha256");
  if (hash.empty()) {
    // an older client: the signature covers the body itself, so it is
    // checked once the body is read, and the body may only be small
    *body_limit = std::min(*body_limit, kUnsignedBodyLimit);
    return std::nullopt;
  }
  if (!is_sha256_hex(hash)) return deny("bad body hash header");
  std::string t = req.header("x-ads-time"), nonce = req.header("x-ads-nonce");
  if (!signature_matches(secret(), canonical_for_hash(req.method, req.target, t, nonce, hash),
                         req.header("x-ads-signature")))
    return deny("bad signature");
  if (!nonces_.insert(nonce, unix_now())) return deny("replayed nonce");
  if (auto no = bootstrap_limit(req)) return no;
  req.attrs["body_sha256"] = hash;  // the body, once read, must hash to it (authenticate)
  return std::nullopt;
}

std::optional<Response> AgentServer::authenticate(const Request& req) {
  auto signed_hash = req.attrs.find("body_sha256");
  if (signed_hash != req.attrs.end()) {
    if (sha256_hex(req.body) != signed_hash->second) return deny("the body does not match its signed hash");
    return std::nullopt;
  }
  if (auto bad = check_fields(req)) return bad;
  std::string t = req.header("x-ads-time"), nonce = req.header("x-ads-nonce");
  if (!signature_matches(secret(), canonical(req.method, req.target, t, nonce, req.body),
                         req.header("x-ads-signature")))
    return deny("bad signature");
  if (!nonces_.insert(nonce, unix_now())) return deny("replayed nonce");
  return bootstrap_limit(req);
}

std::string AgentServer::secret() const {
  std::lock_guard<std::mutex> lk(secret_mu_);
  return secret_;
}

std::optional<Response> AgentServer::bootstrap_limit(const Request& req) const {
  {
    std::lock_guard<std::mutex> lk(secret_mu_);
    if (!bootstrap_) return std::nullopt;
  }
  if ((req.method == "GET" && req.path == "/v1/health") || (req.method == "POST" && req.path == "/v1/secret"))
    return std::nullopt;
  return Response::error(403, "forbidden",
                         "the agent still has its bootstrap secret, which only hands over: ADS replaces it first "
                         "(POST /v1/secret)");
}

Response AgentServer::open_ssh(const Request& req) {
  json j = json::parse(req.body, nullptr, false);
  if (!j.is_object() || !j.contains("public_key") || !j["public_key"].is_string())
    return Response::error(400, "invalid", "the body must be {\"public_key\": \"ssh-ed25519 ...\", \"ttl_s\": N}",
                           "public_key");
  if (!j.contains("ttl_s") || !j["ttl_s"].is_number_integer())
    return Response::error(400, "invalid", "ttl_s must be a whole number of seconds", "ttl_s");
  long long ttl = j["ttl_s"].get<long long>();
  if (ttl < 1 || ttl > kMaxSshTtlSeconds)
    return Response::error(400, "invalid", "ttl_s must be 1 to " + std::to_string(kMaxSshTtlSeconds) + " seconds",
                           "ttl_s");
  auto host_key = ssh_.open(j["public_key"].get<std::string>(), static_cast<int>(ttl));
  if (!host_key) {
    const auto& e = host_key.error();
    if (e.code == "invalid") return Response::error(400, "invalid", e.message, e.field);
    if (e.code == "unsupported") return Response::error(409, "unsupported", e.message);
    return Response::error(500, "internal", e.message);
  }
  return Response::json(200, json{{"host_key", *host_key}, {"port", ssh_.port()}});
}

Response AgentServer::close_ssh() {
  ssh_.close();
  return Response::json(200, json{{"closed", true}});
}

Response AgentServer::replace_secret(const Request& req) {
  if (cfg_.secret_file.empty())
    return Response::error(
        404, "not_found", "this agent keeps no secret file (secret_file in its config): its secret cannot be replaced");
  json j = json::parse(req.body, nullptr, false);
  if (!j.is_object() || !j.contains("secret") || !j["secret"].is_string())
    return Response::error(400, "invalid", "the body must be {\"secret\": \"<hex>\"}", "secret");
  std::string fresh = j["secret"];
  if (!is_valid_new_secret(fresh))
    return Response::error(400, "invalid", "the new secret must be 64-256 lower-case hex characters", "secret");
  if (fresh == cfg_.secret)
    return Response::error(400, "invalid", "the new secret must not be the bootstrap secret", "secret");
  std::lock_guard<std::mutex> one(replace_mu_);
  {
    std::lock_guard<std::mutex> lk(secret_mu_);
    if (!bootstrap_ && fresh == secret_) return Response::json(200, json{{"replaced", false}});  // a retry
  }
  auto id = agent_identity(fresh);
  if (!id) return Response::error(500, "internal", "cannot make the TLS certificate of the new secret");
  // kept before it is used: after a crash from here on, the agent restarts
  // with the new secret (ADS, which recorded it before sending it, tries it)
  if (auto st = write_secret_file(cfg_.secret_file, fresh); !st)
    return Response::error(500, "internal", "cannot keep the new secret: " + st.error().message);
  if (auto st = server_.set_tls_identity(id->cert_pem, id->key_pem); !st)
    return Response::error(500, "internal", "cannot use the new secret's TLS certificate: " + st.error().message);
  std::lock_guard<std::mutex> lk(secret_mu_);
  secret_ = std::move(fresh);
  bootstrap_ = false;
  return Response::json(200, json{{"replaced", true}});
}

Response AgentServer::health() {
  json h;
  h["uptime_s"] = machine_uptime(read_file("/proc/uptime"), read_file("/proc/1/stat"), sysconf(_SC_CLK_TCK));
  h["agent_uptime_s"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
  std::istringstream mi(read_file("/proc/meminfo"));
  std::string key;
  long long val;
  std::string unit;
  json mem = json::object();
  while (mi >> key >> val) {
    std::getline(mi, unit);
    if (key == "MemTotal:") mem["total_kb"] = val;
    if (key == "MemAvailable:") mem["available_kb"] = val;
  }
  h["memory"] = mem;
  struct statvfs vfs;
  std::string where = fs::exists(cfg_.lab_dir) ? cfg_.lab_dir : "/";
  if (statvfs(where.c_str(), &vfs) == 0) {
    h["disk"] = {{"total_kb", static_cast<long long>(vfs.f_blocks * vfs.f_frsize / 1024)},
                 {"free_kb", static_cast<long long>(vfs.f_bavail * vfs.f_frsize / 1024)}};
  }
  double l1 = 0, l5 = 0, l15 = 0;
  std::istringstream(read_file("/proc/loadavg")) >> l1 >> l5 >> l15;
  h["load"] = {l1, l5, l15};
  int procs = 0;
  std::error_code ec;  // directory_iterator, not readdir: readdir is not thread safe
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name[0] >= '1' && name[0] <= '9') ++procs;
  }
  h["processes"] = procs;
  std::lock_guard<std::mutex> lk(lab_mu_);
  h["lab"] = {{"uploaded", spec_.has_value()}, {"spec_format", spec_ ? json(spec_->format) : json(nullptr)}};
  return Response::json(200, h);
}

Response AgentServer::upload(const Request& req) {
  BusyGuard busy(busy_);
  if (!busy.got()) return Response::error(409, "busy", "the agent is busy with another upload or action");
  if (req.body.empty()) return Response::error(400, "invalid", "the body must be a .tar.gz of the lab");
  if (auto err = unpack(req.body, cfg_.lab_dir)) return *err;
  auto spec = unpacked_spec(cfg_.lab_dir);
  if (!spec) return Response::error(422, "invalid", spec.error().message, spec.error().field);
  int format = spec->format;
  {
    std::lock_guard<std::mutex> lk(lab_mu_);
    spec_ = std::move(spec.value());
  }
  // not keeping it costs only the later actions' copy (they fetch the source again)
  if (auto st = write_file_durably(kept_lab_archive(cfg_), req.body); !st)
    std::cerr << "ads-agent: the lab is in place, but its archive is not kept: " << st.error().message << "\n";
  return Response::json(200, json{{"spec_format", format}, {"lab_dir", cfg_.lab_dir}});
}

std::optional<Response> AgentServer::unpack(const std::string& tar_gz, const std::string& dir) {
  auto listing = run_argv({"tar", "-tzf", "-"}, tar_gz);
  if (listing.exit_code != 0)
    return Response::error(400, "invalid", "the body is not a readable .tar.gz: " + printable(listing.err, 500));
  std::istringstream names(listing.out);
  std::string n;
  while (std::getline(names, n)) {
    if (n.empty()) continue;
    if (n[0] == '/' || n == ".." || n.rfind("../", 0) == 0 || n.find("/../") != std::string::npos ||
        (n.size() >= 3 && n.substr(n.size() - 3) == "/.."))
      return Response::error(400, "invalid", "the archive has an unsafe member: " + printable(n));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Response::error(500, "internal", "cannot create " + dir + ": " + ec.message());
  auto x = run_argv({"tar", "-xzf", "-", "-C", dir, "--no-same-owner"}, tar_gz);
  if (x.exit_code != 0) return Response::error(400, "invalid", "cannot unpack the archive: " + printable(x.err, 500));
  // Links arrive as links. GNU tar writes nothing through a link while it
  // unpacks (a link that is absolute or has ".." is put in place last); once
  // all is in place, a link that leads out of `dir` refuses the whole archive.
  if (auto bad = first_escaping_link(dir)) {
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    return Response::error(400, "invalid",
                           "the archive holds a symbolic link that leads outside " + dir + ": " + *bad +
                               "; links must point to a place inside it");
  }
  return std::nullopt;
}

Response AgentServer::get_backup() {
  BusyGuard busy(busy_);
  if (!busy.got()) return Response::error(409, "busy", "the agent is busy with another upload or action");
  std::error_code ec;
  fs::create_directories(cfg_.backup_dir, ec);
  // tar's warnings (e.g. "socket ignored", exit 0) go to its stderr, never
  // into the archive
  auto tar = run_argv({"tar", "-czf", "-", "-C", cfg_.backup_dir, "."}, "");
  if (tar.exit_code != 0)
    return Response::error(500, "internal", "cannot pack " + cfg_.backup_dir + ": " + tar.err.substr(0, 500));
  if (!tar.err.empty()) std::cerr << "ads-agent: packing " << cfg_.backup_dir << ": " << tar.err.substr(0, 2000);
  Response r;
  r.content_type = "application/gzip";
  r.body = std::move(tar.out);
  return r;
}

Response AgentServer::put_backup(const Request& req) {
  BusyGuard busy(busy_);
  if (!busy.got()) return Response::error(409, "busy", "the agent is busy with another upload or action");
  if (req.body.empty()) return Response::error(400, "invalid", "the body must be a .tar.gz of a backup");
  if (auto err = unpack(req.body, cfg_.backup_dir)) return *err;
  return Response::json(200, json{{"backup_dir", cfg_.backup_dir}});
}

Response AgentServer::cancel() {
  auto run = running_;
  std::unique_lock<std::mutex> lk(run->mu);
  if (run->name.empty()) return Response::error(409, "conflict", "no action is running");
  std::string name = run->name;
  uint64_t gen = run->generation;
  run->cancel = true;
  if (run->group > 0) kill(-run->group, SIGTERM);
  auto over = [&] { return run->name.empty() || run->generation != gen; };
  // the action's own runner sends SIGKILL after the grace; this is for a
  // runner that cannot (blocked writing to a client that stopped reading)
  bool ended = run->ended.wait_for(lk, std::chrono::seconds(cfg_.kill_grace_s) + std::chrono::seconds(1), over);
  if (!ended) {
    if (run->group > 0) kill(-run->group, SIGKILL);
    ended = run->ended.wait_for(lk, std::chrono::seconds(5), over);
  }
  return Response::json(200, json{{"action", name}, {"ended", ended}});
}

// Holds the agent for one action: its busy flag and its entry for cancel.
class ActionGuard {
 public:
  ActionGuard(std::atomic<bool>& busy, std::shared_ptr<RunningAction> run, const std::string& name)
      : busy_(busy), run_(std::move(run)) {
    if (!busy_.got()) return;
    std::lock_guard<std::mutex> lk(run_->mu);
    run_->name = name;
    run_->generation++;
    run_->group = 0;
    run_->cancel = false;
  }
  ~ActionGuard() { finish(); }
  bool got() const { return busy_.got(); }
  // Run once when the action ends, before the agent is free again (what the
  // action made for itself goes before the next action can make it again).
  std::function<void()> at_end;
  // Ends the action for cancel and frees the agent (before the stream's last
  // line, so that a client that has read it may start the next action at once).
  void finish() {
    if (!busy_.got()) return;
    if (at_end) {
      at_end();
      at_end = nullptr;
    }
    {
      std::lock_guard<std::mutex> lk(run_->mu);
      run_->name.clear();
      run_->group = 0;
    }
    run_->ended.notify_all();
    busy_.release();
  }

 private:
  BusyGuard busy_;
  std::shared_ptr<RunningAction> run_;
};

AgentServer::Step AgentServer::playbook_step(const std::string& playbook) const {
  Step st;
  st.workdir = cfg_.lab_dir;  // a playbook's relative paths start at the lab's root
  std::string program;
  for (const auto& dir : cfg_.ansible_dirs) {
    std::string p = dir + "/ansible-playbook";
    if (access(p.c_str(), X_OK) == 0) {
      program = p;
      break;
    }
  }
  std::string vars =
      playbook_vars_json({cfg_.lab_dir, cfg_.backup_dir, cfg_.deployment_id, cfg_.lab_name, cfg_.stable_url});
  // one argument each: the playbook's path is never part of a shell string
  st.argv = {program, "-i", "localhost,", "-c", "local", "-e", vars, "--", playbook};
  st.shown = "ansible-playbook -i localhost, -c local -e <ads_* variables> -- " + playbook;
  st.env = playbook_env();
  if (program.empty())
    st.missing =
        "ansible-playbook is not installed in this machine: the lab names a playbook, so its spec must ask for an "
        "image with Ansible (v2: \"os\": {..., \"variant\": \"build\"}; the operator builds it with "
        "scripts/build-image.sh --variant build)";
  return st;
}

Response AgentServer::action(const Request& req) {
  std::string name = req.param("name");
  const auto& known = known_actions();
  if (name != "install" && std::find(known.begin(), known.end(), name) == known.end())
    return Response::error(404, "not_found", "no such action: " + name.substr(0, 64));
  std::vector<StepPhase> phases;
  int asked = 0;  // the lab's own timeout for this action, 0: none
  {
    std::lock_guard<std::mutex> lk(lab_mu_);
    if (!spec_) return Response::error(409, "conflict", "no lab has been uploaded yet");
    std::string workdir = (fs::path(cfg_.lab_dir) / spec_->workdir).lexically_normal().string();
    auto shell = [&](const Phase& p) {
      StepPhase sp{p.name, {}};
      for (const auto& cmd : p.commands) sp.steps.push_back({cmd, {"/bin/sh", "-c", cmd}, workdir, {}, ""});
      return sp;
    };
    if (name == "install") {
      for (const auto& p : spec_->install) phases.push_back(shell(p));
    } else if (!spec_->action(name).empty()) {
      phases.push_back(shell({name, spec_->action(name)}));
    }
    if (std::string book = spec_->playbook_for(name); !book.empty()) {
      if (spec_->ansible_mode == LabSpec::AnsibleMode::kLocal) {
        phases.push_back({"ansible", {playbook_step(book)}});
      } else {
        phases.push_back({"ansible", {}});  // ADS runs it from its host, over SSH, after this (controller mode)
      }
    }
    asked = spec_->timeout_for(name);
  }
  if (phases.empty()) return Response::error(404, "not_found", "the lab defines no '" + name + "' action");
  auto guard = std::make_shared<ActionGuard>(busy_, running_, name);
  if (!guard->got()) return Response::error(409, "busy", "the agent is busy with another upload or action");
  if (name == "backup") {  // the backup action starts from an empty directory
    std::error_code ec;
    fs::remove_all(cfg_.backup_dir, ec);
    fs::create_directories(cfg_.backup_dir, ec);
  }
  return stream_phases(name, std::move(phases), asked, guard);
}

Response AgentServer::check(const Request& req) {
  auto guard = std::make_shared<ActionGuard>(busy_, running_, "check");
  if (!guard->got()) return Response::error(409, "busy", "the agent is busy with another upload or action");
  std::optional<LabSpec> spec;
  std::string dir = cfg_.lab_dir;
  if (req.body.empty()) {
    std::lock_guard<std::mutex> lk(lab_mu_);
    if (!spec_) return Response::error(409, "conflict", "no lab has been uploaded yet");
    spec = spec_;
  } else {
    // the lab to check, beside the lab, for this run only
    dir = cfg_.lab_dir + ".check";
    guard->at_end = [dir] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    };
    if (auto err = unpack(req.body, dir)) return *err;
    auto sent = unpacked_spec(dir);
    if (!sent) return Response::error(422, "invalid", sent.error().message, sent.error().field);
    spec = std::move(sent.value());
  }
  const std::string book = spec->playbook_for("install");
  if (book.empty())
    return Response::error(409, "conflict", "the lab installs with commands, not with an Ansible playbook");
  if (spec->ansible_mode != LabSpec::AnsibleMode::kLocal)
    return Response::error(409, "conflict",
                           "the lab's playbooks run from the ADS host (controller mode), which checks them there");
  const std::string diff = req.query_or("diff", "0");
  if (diff != "0" && diff != "1") return Response::error(400, "invalid", "diff must be 0 or 1", "diff");
  std::vector<std::string> args = {"--check"};
  if (diff == "1") args.emplace_back("--diff");
  Step st = playbook_step(book);
  st.workdir = dir;  // the playbook's files; ads_lab_dir stays the lab's own directory
  st.argv.insert(std::find(st.argv.begin(), st.argv.end(), "--"), args.begin(), args.end());
  st.shown = std::string("ansible-playbook -i localhost, -c local -e <ads_* variables> --check ") +
             (diff == "1" ? "--diff " : "") + "-- " + book;
  return stream_phases("check", {{"check", {st}}}, spec->timeout_for("install"), guard);
}

Response AgentServer::stream_phases(const std::string& name, std::vector<StepPhase> phases, int asked,
                                    const std::shared_ptr<ActionGuard>& guard) {
  Response r;
  r.content_type = "application/x-ndjson";
  // announces the heartbeats: ADS takes a silent stream for a frozen agent
  // only from an agent that sends them
  r.headers.push_back({kHeaderHeartbeat, std::to_string(cfg_.heartbeat_s)});
  RunOptions opts;
  opts.timeout_s = cfg_.command_timeout_s;  // the operator's maximum
  std::string note;
  if (asked > 0 && asked <= cfg_.command_timeout_s) {
    opts.timeout_s = asked;
  } else if (asked > cfg_.command_timeout_s) {
    note = "timeouts." + name + " asks for " + std::to_string(asked) +
           " s, more than the operator allows: " + "each command may run " + std::to_string(cfg_.command_timeout_s) +
           " s";
  }
  opts.env = {"ADS_LAB_DIR=" + cfg_.lab_dir, "ADS_BACKUP_DIR=" + cfg_.backup_dir,
              "ADS_DEPLOYMENT_ID=" + cfg_.deployment_id, "ADS_LAB_NAME=" + cfg_.lab_name,
              "ADS_STABLE_URL=" + cfg_.stable_url};
  opts.kill_grace = std::chrono::seconds(cfg_.kill_grace_s);
  opts.tick = std::chrono::seconds(cfg_.heartbeat_s);
  auto run = running_;
  opts.cancel = &run->cancel;
  opts.on_group = [run](pid_t g) {
    std::lock_guard<std::mutex> lk(run->mu);
    run->group = g;
  };
  r.stream = [phases = std::move(phases), opts, guard, run, note](http::StreamWriter& w) mutable {
    auto emit = [&w](const json& j) { w.write(j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"); };
    // a heartbeat every few seconds while a command runs, even a silent one:
    // ADS tells a quiet command from a frozen agent by them
    opts.on_tick = [&emit] { emit({{"event", "heartbeat"}}); };
    auto out = [&emit](const std::string& stream, const std::string& line) {
      emit({{"event", "output"}, {"stream", stream}, {"line", line}});
    };
    if (!note.empty()) out("agent", note);
    int code = 0;
    bool cancelled = false;
    for (const auto& phase : phases) {
      if ((cancelled = run->cancel.load())) break;
      emit({{"event", "phase"}, {"phase", phase.name}});
      for (const auto& step : phase.steps) {
        if ((cancelled = run->cancel.load())) break;
        emit({{"event", "command"}, {"command", step.shown}});
        RunResult res{127, false, false};
        if (!step.missing.empty()) {
          out("agent", step.missing);
        } else {
          RunOptions o = opts;
          o.env.insert(o.env.end(), step.env.begin(), step.env.end());
          res = run_program(step.argv, step.workdir, o, out);
        }
        emit({{"event", "exit"}, {"code", res.exit_code}, {"command", step.shown}});
        if (res.cancelled || run->cancel.load()) cancelled = true;
        if (res.exit_code != 0 || cancelled) {
          code = res.exit_code;
          break;
        }
      }
      if (code != 0 || cancelled) break;
    }
    guard->finish();
    if (cancelled) emit({{"event", "cancelled"}, {"code", code}});
    else emit({{"event", "done"}, {"code", code}});
  };
  return r;
}

}  // namespace ads::agent
