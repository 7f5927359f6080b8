#include "router/haproxy.h"

#include <fcntl.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <sstream>

#include "router/route_rules.h"

namespace ads::router {
namespace {

namespace asio = boost::asio;

constexpr size_t kMaxAnswer = 16u << 20;

// IPv4 address:port, nothing else: the value goes into set-dst, which needs
// an address, and into a runtime API command line.
Status check_upstream(const std::string& upstream) {
  auto colon = upstream.rfind(':');
  if (upstream.size() > 21 || colon == std::string::npos)
    return Error::invalid(
        "upstream", "must be an IPv4 address and a port, e.g. 10.0.0.2:8080 (got \"" + upstream.substr(0, 64) + "\")");
  std::string host = upstream.substr(0, colon), port = upstream.substr(colon + 1);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address_v4(host, ec);
  // inet_pton is strict (four decimal parts); the spelling must also be the
  // canonical one, so the map holds exactly what HAProxy will parse
  if (ec || addr.to_string() != host)
    return Error::invalid("upstream", "must be an IPv4 address and a port, e.g. 10.0.0.2:8080; \"" +
                                          host.substr(0, 64) +
                                          "\" is not an IPv4 address (HAProxy's router takes no host names)");
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) || std::stoi(port) < 1 ||
      std::stoi(port) > 65535)
    return Error::invalid("upstream", "must end in a port 1-65535");
  return Status::Ok();
}

// A line the runtime API reads as one command with the words ADS meant.
bool safe_command(const std::string& line) {
  if (line.empty() || line.size() > 4096) return false;
  for (unsigned char c : line)
    if ((c < 0x21 && c != ' ') || c == ';' || c == '\\' || c == 0x7f || c > 0x7e) return false;
  return true;
}

std::string trim_end(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string haproxy_socket(const std::string& dir) { return dir + "/haproxy.sock"; }
std::string haproxy_map_file(const std::string& dir, bool with_domain) {
  return dir + (with_domain ? "/hosts.map" : "/ports.map");
}

Status check_haproxy_dir(const std::string& dir) {
  if (dir.empty() || dir.front() != '/')
    return Error::invalid("proxy.dir", "must be an absolute path (got \"" + dir.substr(0, 200) + "\")");
  for (unsigned char c : dir)
    if (!(std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+'))
      return Error::invalid("proxy.dir", "\"" + dir.substr(0, 200) +
                                             "\": HAProxy's files need a path of letters, digits and / . _ - + "
                                             "(it goes into HAProxy's config and runtime commands)");
  if (haproxy_socket(dir).size() >= sizeof(sockaddr_un{}.sun_path))
    return Error::invalid("proxy.dir", "\"" + dir.substr(0, 200) + "\" is too long for a unix socket path");
  return Status::Ok();
}

HaproxyRouter::HaproxyRouter(HaproxyOptions opts)
    : opts_(std::move(opts)),
      socket_(haproxy_socket(opts_.dir)),
      map_(haproxy_map_file(opts_.dir, !opts_.domain.empty())) {}

Result<std::string> HaproxyRouter::command(const std::string& socket, const std::string& line, long timeout_ms) {
  if (!safe_command(line)) return Error::make("invalid", "refused to send an unchecked command to HAProxy");
  asio::io_context io;
  asio::local::stream_protocol::socket s(io);
  std::string out, request = line + "\n";
  boost::system::error_code connect_ec, io_ec;
  bool done = false;
  s.async_connect(asio::local::stream_protocol::endpoint(socket), [&](const boost::system::error_code& ec) {
    connect_ec = ec;
    if (ec) {
      done = true;
      return;
    }
    asio::async_write(s, asio::buffer(request), [&](const boost::system::error_code& wec, size_t) {
      if (wec) {
        io_ec = wec;
        done = true;
        return;
      }
      // one command per connection: HAProxy answers and closes
      asio::async_read(s, asio::dynamic_buffer(out, kMaxAnswer), [&](const boost::system::error_code& rec, size_t) {
        if (rec != asio::error::eof) io_ec = rec;
        done = true;
      });
    });
  });
  io.run_for(std::chrono::milliseconds(timeout_ms));
  std::string where = "HAProxy's runtime API (" + socket + ")";
  if (!done) return Error::make("timeout", where + " did not answer within " + std::to_string(timeout_ms) + " ms");
  if (connect_ec) return Error::make("unavailable", where + ": " + connect_ec.message() + " (is the proxy running?)");
  if (io_ec) return Error::make("failed", where + ": " + io_ec.message());
  return out;
}

std::vector<std::pair<std::string, std::string>> HaproxyRouter::parse_show_map(const std::string& text) {
  // "0x55d0c8a1e3f0 <key> <value>" a line
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string ref, key, value, more;
    if (!(words >> ref >> key >> value) || (words >> more) || ref.rfind("0x", 0) != 0) continue;
    out.emplace_back(key, value);
  }
  return out;
}

Result<std::string> HaproxyRouter::run(const std::string& line) { return command(socket_, line, opts_.timeout_ms); }

Status HaproxyRouter::run_ok(const std::string& line) {
  auto r = run(line);
  if (!r) return r.error();
  std::string answer = trim_end(*r);
  if (!answer.empty()) {
    if (answer.size() > 500) answer.resize(500);
    return Error::make("failed", "HAProxy refused \"" + line + "\": " + answer);
  }
  return Status::Ok();
}

std::string HaproxyRouter::key(const Route& r) const {
  return opts_.domain.empty() ? std::to_string(r.port) : r.name + "." + opts_.domain;
}

Result<HaproxyRouter::Routes> HaproxyRouter::current() {
  auto text = run("show map " + map_);
  if (!text) return text.error();
  if (text->rfind("0x", 0) != 0 && !trim_end(*text).empty())
    return Error::make("failed", "HAProxy has no map " + map_ +
                                     " (a proxy started for the other mode?): " + trim_end(*text).substr(0, 300));
  Routes out;
  for (auto& [k, v] : parse_show_map(*text)) {
    auto slash = v.find('/');
    if (slash == std::string::npos) continue;  // not an entry ADS wrote
    Route r{v.substr(0, slash), v.substr(slash + 1), 0};
    if (opts_.domain.empty()) r.port = std::atoi(k.c_str());
    out[r.name] = r;
  }
  return out;
}

Status HaproxyRouter::write_map_file(const Routes& routes) {
  std::string text = "# written by ADS (the router); HAProxy reads it at start\n";
  for (auto& [n, r] : routes) text += key(r) + " " + value(r) + "\n";
  std::string tmp = map_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error::make("failed", "cannot write " + tmp);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), map_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error::make("failed", "cannot write " + map_ + " (HAProxy has the change; a restarted one would not)");
  }
  return Status::Ok();
}

Status HaproxyRouter::check(const Route& route) const {
  auto st = check_name_and_port(route, !opts_.domain.empty());
  if (!st && st.error().field == "name") return st;
  auto up = check_upstream(route.upstream);
  if (!up) return up;
  if (!st) return st;
  return check_haproxy_dir(opts_.dir);
}

Status HaproxyRouter::put(const Route& route) {
  auto st = check(route);
  if (!st) return st;
  Route r = route;
  if (!opts_.domain.empty()) r.port = 0;
  std::lock_guard<std::mutex> lk(mu_);
  auto cur = current();
  if (!cur) return cur.error();
  Routes next = *cur;
  // the entry for this key: changed in place (the switch), or added
  const Route* on_key = nullptr;
  for (auto& [n, x] : *cur)
    if (key(x) == key(r)) on_key = &x;
  if (on_key && value(*on_key) == value(r)) {
    // already so
  } else if (on_key) {
    if (auto s = run_ok("set map " + map_ + " " + key(r) + " " + value(r)); !s) return s;
    next.erase(on_key->name);  // without a domain a port serves one lab: a stale route on it goes
  } else {
    if (auto s = run_ok("add map " + map_ + " " + key(r) + " " + value(r)); !s) return s;
  }
  // the lab's entry under another key (it moved to another port) goes
  if (auto it = cur->find(r.name); it != cur->end() && key(it->second) != key(r))
    if (auto s = run_ok("del map " + map_ + " " + key(it->second)); !s) return s;
  next[r.name] = r;
  return write_map_file(next);
}

Status HaproxyRouter::remove(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  auto cur = current();
  if (!cur) return cur.error();
  auto it = cur->find(name);
  if (it == cur->end()) return Status::Ok();
  if (auto s = run_ok("del map " + map_ + " " + key(it->second)); !s) return s;
  cur->erase(it);
  return write_map_file(*cur);
}

Status HaproxyRouter::sync(const std::vector<Route>& list) {
  Routes wanted;
  std::map<std::string, std::string> by_key;
  for (auto r : list) {
    auto st = check(r);
    if (!st) return Error::invalid(st.error().field, "route \"" + r.name + "\": " + st.error().message);
    if (!opts_.domain.empty()) r.port = 0;
    if (auto k = by_key.find(key(r)); k != by_key.end() && k->second != r.name)
      return Error::invalid(
          "port", "routes \"" + k->second + "\" and \"" + r.name + "\" have the same port " + std::to_string(r.port));
    by_key[key(r)] = r.name;
    wanted[r.name] = r;
  }
  std::lock_guard<std::mutex> lk(mu_);
  auto prepared = run("prepare map " + map_);
  if (!prepared) return prepared.error();
  // "New version created: 7"
  std::string answer = trim_end(*prepared);
  auto colon = answer.rfind(": ");
  std::string version = colon == std::string::npos ? "" : answer.substr(colon + 2);
  if (answer.rfind("New version created", 0) != 0 || version.empty() ||
      !std::all_of(version.begin(), version.end(), [](unsigned char c) { return std::isdigit(c); }))
    return Error::make("failed", "HAProxy refused \"prepare map " + map_ + "\": " + answer.substr(0, 300));
  for (auto& [n, r] : wanted) {
    if (auto s = run_ok("add map @" + version + " " + map_ + " " + key(r) + " " + value(r)); !s) {
      (void)run("clear map @" + version + " " + map_);  // the half-made version goes; the live one stays
      return s;
    }
  }
  if (auto s = run_ok("commit map @" + version + " " + map_); !s) return s;
  return write_map_file(wanted);
}

std::string HaproxyRouter::url(const Route& route) const {
  return stable_url(route, opts_.domain, opts_.listen_port, opts_.public_host);
}

Result<std::vector<Route>> HaproxyRouter::routes() {
  std::lock_guard<std::mutex> lk(mu_);
  auto cur = current();
  if (!cur) return cur.error();
  std::vector<Route> out;
  for (auto& [n, r] : *cur) out.push_back(r);
  return out;
}

Status HaproxyRouter::ping() {
  auto r = run("show info");
  if (!r) return r.error();
  return Status::Ok();
}

}  // namespace ads::router
