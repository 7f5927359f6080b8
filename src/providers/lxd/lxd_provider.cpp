#include "providers/lxd/lxd_provider.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include "core/ipnet.h"
#include "core/terminal.h"
#include "http/client.h"
#include "providers/lxd/lxd_shell.h"

namespace ads {
using nlohmann::json;

namespace {
constexpr const char* kLabelPrefix = "user.ads.";

std::string lxd_message(const json& body, long status) {
  if (body.is_object() && body.contains("error") && body["error"].is_string() &&
      !body["error"].get<std::string>().empty())
    return body["error"].get<std::string>();
  return "HTTP " + std::to_string(status);
}

std::string url_escape_path(const std::string& p) {
  std::string out;
  for (unsigned char c : p) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.') out.push_back(static_cast<char>(c));
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// An operation's address, "/1.0/operations/<id>" with "?project=default"
// when a cluster member forwarded the request: its path, and its query as
// "&..." (to follow a query of the caller's own; "" when it has none).
std::pair<std::string, std::string> split_operation(const std::string& address) {
  auto q = address.find('?');
  if (q == std::string::npos) return {address, ""};
  return {address.substr(0, q), "&" + address.substr(q + 1)};
}

// The machine's login shell for `ads shell`: bash where the image has it (a
// fixed text, nothing of the request's in it).
const std::vector<std::string> kLoginShell = {"/bin/sh", "-c",
                                              "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"};

bool valid_machine_name(const std::string& n) {
  if (n.empty() || n.size() > 63 || !std::isalpha(static_cast<unsigned char>(n[0]))) return false;
  for (unsigned char c : n)
    if (!(std::islower(c) || std::isdigit(c) || c == '-')) return false;
  return n.back() != '-';
}
}  // namespace

LxdProvider::LxdProvider(Settings s) : s_(std::move(s)) {}

Result<std::unique_ptr<Provider>> LxdProvider::create_from(const json& settings) {
  Settings s;
  if (!settings.is_null() && !settings.is_object()) return Error::invalid("providers.lxd", "must be an object");
  if (settings.is_object()) {
    if (settings.contains("socket")) {
      if (!settings["socket"].is_string()) return Error::invalid("providers.lxd.socket", "must be a string");
      s.socket = settings["socket"];
    }
    if (settings.contains("profile")) {
      if (!settings["profile"].is_string()) return Error::invalid("providers.lxd.profile", "must be a string");
      s.profile = settings["profile"];
    }
    if (settings.contains("pool")) {
      // an LXD storage pool name: letters, digits, - _ . (not starting with -)
      const auto& v = settings["pool"];
      if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 63 ||
          v.get<std::string>().front() == '-' ||
          v.get<std::string>().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
              std::string::npos)
        return Error::invalid("providers.lxd.pool",
                              "must be the name of an LXD storage pool (letters, digits, - _ .; at most 63)");
      s.pool = v;
    }
    if (settings.contains("images")) {
      if (!settings["images"].is_object()) return Error::invalid("providers.lxd.images", "must be an object");
      s.images.clear();
      for (auto& [k, v] : settings["images"].items()) {
        const std::string f = "providers.lxd.images." + k;
        if (v.is_string()) {
          s.images[k] = v;
          continue;
        }
        if (!v.is_object()) return Error::invalid(f, "must be an image alias or {\"server\", \"alias\", ...}");
        Settings::RemoteImage r;
        for (auto& [rk, rv] : v.items()) {
          if (rk != "server" && rk != "protocol" && rk != "alias" && rk != "certificate")
            return Error::invalid(f + "." + rk, "unknown setting (server, protocol, alias, certificate)");
          if (!rv.is_string() || rv.get<std::string>().empty() || rv.get<std::string>().size() > 1024)
            return Error::invalid(f + "." + rk, "must be a non-empty string");
          for (unsigned char c : rv.get<std::string>())
            if (c < 0x21 || c > 0x7e) return Error::invalid(f + "." + rk, "must be printable, without spaces");
        }
        r.server = v.value("server", "");
        r.alias = v.value("alias", "");
        r.protocol = v.value("protocol", "simplestreams");
        r.certificate_file = v.value("certificate", "");
        if (r.server.rfind("https://", 0) != 0) return Error::invalid(f + ".server", "must be an https:// URL");
        if (r.alias.empty()) return Error::invalid(f + ".alias", "is required");
        if (r.protocol != "simplestreams" && r.protocol != "lxd")
          return Error::invalid(f + ".protocol", "must be simplestreams or lxd");
        if (!r.certificate_file.empty() && r.certificate_file[0] != '/')
          return Error::invalid(f + ".certificate", "must be an absolute path (a PEM file on the ADS host)");
        s.remote_images[k] = r;
      }
    }
    if (settings.contains("nic")) {
      const std::string f = "providers.lxd.nic";
      const json& n = settings["nic"];
      if (!n.is_object()) return Error::invalid(f, "must be an object");
      for (auto& [k, v] : n.items()) {
        if (k != "type" && k != "parent" && k != "subnet" && k != "gateway" && k != "nameserver" && k != "static_hook")
          return Error::invalid(f + "." + k, "unknown setting");
        if (!v.is_string()) return Error::invalid(f + "." + k, "must be a string");
      }
      auto& o = s.nic;
      o.type = n.value("type", "");
      o.parent = n.value("parent", "");
      o.subnet = n.value("subnet", "");
      o.gateway = n.value("gateway", "");
      o.nameserver = n.value("nameserver", "");
      o.static_hook = n.value("static_hook", o.static_hook);
      if (o.type != "bridged" && o.type != "macvlan")
        return Error::invalid(f + ".type", "must be \"bridged\" or \"macvlan\"");
      // a Linux interface name: 1-15 chars, no '/', no whitespace
      bool name_ok = !o.parent.empty() && o.parent.size() <= 15 && o.parent != "." && o.parent != "..";
      for (unsigned char c : o.parent) name_ok = name_ok && std::isgraph(c) && c != '/' && c != ':';
      if (!name_ok) return Error::invalid(f + ".parent", "must name a host interface (1-15 characters)");
      if (!o.subnet.empty()) {
        auto net = parse_ipv4_subnet(o.subnet, f + ".subnet");
        if (!net) return net.error();
        if (!net->has_allocatable()) return Error::invalid(f + ".subnet", o.subnet + " has no address to hand out");
        o.subnet = net->to_string();
        if (o.gateway.empty()) o.gateway = format_ipv4(net->gateway());
        auto gw = parse_ipv4(o.gateway);
        if (!gw || !net->contains(*gw)) return Error::invalid(f + ".gateway", "must be an address in " + o.subnet);
        if (o.nameserver.empty()) o.nameserver = o.gateway;
        if (!parse_ipv4(o.nameserver)) return Error::invalid(f + ".nameserver", "must be an IPv4 address");
        if (o.static_hook.empty() || o.static_hook[0] != '/' || o.static_hook.find("..") != std::string::npos)
          return Error::invalid(f + ".static_hook", "must be an absolute path without '..'");
      } else if (!o.gateway.empty() || !o.nameserver.empty()) {
        return Error::invalid(f + ".subnet", "gateway and nameserver are for static addresses: set subnet too");
      }
    }
    if (settings.contains("placement")) {
      if (!settings["placement"].is_string() || (settings["placement"] != "lxd" && settings["placement"] != "ads"))
        return Error::invalid(
            "providers.lxd.placement",
            "must be \"lxd\" (LXD picks the cluster member) or \"ads\" (the member with the most free memory)");
      s.placement = settings["placement"];
    }
    if (settings.contains("operation_timeout_s")) {
      if (!settings["operation_timeout_s"].is_number_integer() || settings["operation_timeout_s"].get<int>() < 1)
        return Error::invalid("providers.lxd.operation_timeout_s", "must be a positive integer");
      s.operation_timeout_s = settings["operation_timeout_s"];
    }
  }
  return std::unique_ptr<Provider>(new LxdProvider(std::move(s)));
}

Result<LxdProvider::Reply> LxdProvider::call(const std::string& method, const std::string& path,
                                             const std::string& body,
                                             const std::vector<std::pair<std::string, std::string>>& headers,
                                             long timeout_ms) {
  http::ClientRequest req;
  req.method = method;
  req.url = "http://lxd" + path;
  req.unix_socket = s_.socket;
  req.body = body;
  req.headers = headers;
  if (headers.empty() && !body.empty()) req.headers.push_back({"Content-Type", "application/json"});
  req.timeout_ms = timeout_ms;
  auto r = http::request(req);
  if (!r) {
    return Error::make(r.error().code, "LXD is not reachable on " + s_.socket + " (" + r.error().message +
                                           "); is it running? scripts/lxd-host.sh starts it");
  }
  Reply out;
  out.status = r->status;
  out.body = json::parse(r->body, nullptr, false);
  if (out.body.is_discarded()) out.body = json::object();
  return out;
}

Status LxdProvider::ping() {
  auto r = call("GET", "/1.0");
  if (!r) return r.error();
  if (r->status != 200) return Error::make("unavailable", "LXD answered " + lxd_message(r->body, r->status));
  return Status::Ok();
}

Status LxdProvider::wait_operation(const Reply& r, const std::string& what) {
  auto md = await_operation(r, what, s_.operation_timeout_s);
  if (!md) return md.error();
  return Status::Ok();
}

Result<json> LxdProvider::await_operation(const Reply& r, const std::string& what, int timeout_s) {
  if (r.status >= 400) return Error::make("failed", what + ": " + lxd_message(r.body, r.status));
  if (!r.body.contains("operation") || !r.body["operation"].is_string())  // sync
    return r.body.value("metadata", json::object());
  // /wait goes before the operation's query
  auto [op, query] = split_operation(r.body["operation"]);
  auto w = call("GET", op + "/wait?timeout=" + std::to_string(timeout_s) + query, "", {}, (timeout_s + 10) * 1000L);
  if (!w) return w.error();
  const json md = w->body.value("metadata", json::object());
  std::string status = md.is_object() ? md.value("status", "") : "";
  if (w->status == 200 && status == "Success") return md.value("metadata", json::object());
  std::string err = md.is_object() ? md.value("err", "") : "";
  if (status == "Running")
    return Error::make("timeout", what + ": LXD operation still running after " + std::to_string(timeout_s) + " s");
  return Error::make("failed", what + ": " + (err.empty() ? lxd_message(w->body, w->status) : err));
}

Status LxdProvider::make_dirs(const std::string& name, const std::string& path) {
  // Creates each missing parent of `path` (like mkdir -p), root-owned 0755.
  std::string cur;
  size_t pos = 1;
  while ((pos = path.find('/', pos)) != std::string::npos) {
    cur = path.substr(0, pos);
    ++pos;
    auto r = call("POST", "/1.0/instances/" + name + "/files?path=" + url_escape_path(cur), "",
                  {{"X-LXD-type", "directory"},
                   {"X-LXD-uid", "0"},
                   {"X-LXD-gid", "0"},
                   {"X-LXD-mode", "0755"},
                   {"X-LXD-write", "overwrite"}});
    if (!r) return r.error();
    // An existing directory answers an error on some LXD versions; that is fine.
  }
  return Status::Ok();
}

Status LxdProvider::push_file(const std::string& name, const FileToPlace& f, bool make_parents) {
  if (f.path.empty() || f.path[0] != '/' || f.path.find("..") != std::string::npos)
    return Error::invalid("path", "file path must be absolute without '..': " + f.path);
  if (make_parents) {
    if (auto st = make_dirs(name, f.path); !st) return st;
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", f.mode);
  auto r = call("POST", "/1.0/instances/" + name + "/files?path=" + url_escape_path(f.path), f.content,
                {{"Content-Type", "application/octet-stream"},
                 {"X-LXD-type", "file"},
                 {"X-LXD-uid", "0"},
                 {"X-LXD-gid", "0"},
                 {"X-LXD-mode", mode},
                 {"X-LXD-write", "overwrite"}},
                300000);
  if (!r) return r.error();
  if (r->status != 200)
    return Error::make("failed", "placing " + f.path + " in " + name + ": " + lxd_message(r->body, r->status));
  return Status::Ok();
}

Result<std::string> LxdProvider::static_hook_script(const std::string& address) const {
  auto net = parse_ipv4_subnet(s_.nic.subnet);
  if (!net) return net.error();
  auto a = parse_ipv4(address);
  if (!a || !net->contains(*a) || *a < net->first_allocatable() || *a > net->last_allocatable())
    return Error::invalid("address", "\"" + address + "\" is not an allocatable address of " + s_.nic.subnet);
  // Only validated dotted quads and constants go into the script.
  std::string cidr = format_ipv4(*a) + "/" + std::to_string(net->prefix);
  return "#!/bin/sh\n"
         "# Written by ADS: a static address from " +
         net->to_string() +
         " (udhcpc leases are ignored).\n"
         "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
         "case \"$1\" in\n"
         "  deconfig|bound|renew|leasefail|nak)\n"
         "    if [ \"$(busybox ip -4 -o addr show dev \"$interface\" | busybox awk '{ print $4 }')\" != " +
         cidr +
         " ]; then\n"
         "      busybox ip -4 addr flush dev \"$interface\"\n"
         "      busybox ip addr add " +
         cidr +
         " dev \"$interface\"\n"
         "    fi\n"
         "    busybox ip link set \"$interface\" up\n"
         "    busybox ip route replace default via " +
         s_.nic.gateway +
         " dev \"$interface\"\n"
         "    echo \"nameserver " +
         s_.nic.nameserver +
         "\" >/etc/resolv.conf\n"
         "    echo \"ads: static " +
         cidr +
         " on $interface\"\n"
         "    ;;\n"
         "esac\n"
         "exit 0\n";
}

namespace {
// Where a missing image comes from: ADS's own (ads-debian-12,
// ads-debian-12-VARIANT) from scripts/build-image.sh.
std::string how_to_get(const std::string& alias) {
  if (alias == "ads-debian-12") return "scripts/build-image.sh builds it";
  if (alias == "ads-debian-12-build") return "scripts/build-image.sh --variant build builds it";
  return "import it into LXD (lxc image import), or name an image server for its key";
}

// An image alias as one segment of an API path ('/' too is escaped).
std::string alias_segment(const std::string& alias) {
  std::string out;
  for (char c : url_escape_path(alias)) out += c == '/' ? std::string("%2F") : std::string(1, c);
  return out;
}
}  // namespace

Result<std::vector<ImageInfo>> LxdProvider::images() {
  std::vector<ImageInfo> out;
  for (const auto& [key, alias] : s_.images) {
    auto r = call("GET", "/1.0/images/aliases/" + alias_segment(alias));
    if (!r) return r.error();
    if (r->status == 200) out.push_back({key, alias, "available", ""});
    else if (r->status == 404) out.push_back({key, alias, "missing", how_to_get(alias)});
    else return Error::make("unavailable", "LXD answered " + std::to_string(r->status) + " for image " + alias);
  }
  for (const auto& [key, r] : s_.remote_images)
    out.push_back({key, r.alias + " from " + r.server, "unchecked",
                   "pulled by LXD from the image server (" + r.protocol + ") at the first deploy, then cached"});
  std::sort(out.begin(), out.end(), [](const ImageInfo& a, const ImageInfo& b) { return a.os_key < b.os_key; });
  return out;
}

Status LxdProvider::create(const MachineSpec& spec, const ProgressFn& progress) {
  if (!valid_machine_name(spec.name)) return Error::invalid("name", "not a valid machine name: " + spec.name);
  std::vector<FileToPlace> files = spec.files;
  if (!s_.nic.subnet.empty()) {
    if (spec.address.empty()) return Error::invalid("address", "a static address from " + s_.nic.subnet + " is needed");
    auto hook = static_hook_script(spec.address);
    if (!hook) return hook.error();
    files.push_back({s_.nic.static_hook, *hook, 0755});
  }
  json source;  // where the container's image comes from
  std::string image_said;
  bool image_from_server = false;
  if (auto img = s_.images.find(spec.os_key); img != s_.images.end()) {
    auto alias = call("GET", "/1.0/images/aliases/" + alias_segment(img->second));
    if (!alias) return alias.error();
    if (alias->status == 404)
      return Error::make("unavailable",
                         "LXD has no image " + img->second + " (for " + spec.os_key + "); " + how_to_get(img->second));
    source = {{"type", "image"}, {"alias", img->second}};
    image_said = img->second;
  } else if (auto rem = s_.remote_images.find(spec.os_key); rem != s_.remote_images.end()) {
    const auto& r = rem->second;
    source = {{"type", "image"}, {"mode", "pull"}, {"server", r.server}, {"protocol", r.protocol}, {"alias", r.alias}};
    if (!r.certificate_file.empty()) {
      std::ifstream in(r.certificate_file);
      if (!in)
        return Error::make("unavailable",
                           "cannot read the certificate of image server " + r.server + ": " + r.certificate_file);
      std::string pem((std::istreambuf_iterator<char>(in)), {});
      if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        return Error::make("unavailable",
                           r.certificate_file + " holds no PEM certificate (image server " + r.server + ")");
      source["certificate"] = pem;
    }
    image_said = r.alias + " from " + r.server + " (" + r.protocol + ")";
    image_from_server = true;
  } else {
    std::set<std::string> keys;
    for (auto& [k, v] : s_.images) keys.insert(k);
    for (auto& [k, v] : s_.remote_images) keys.insert(k);
    std::string known;
    for (auto& k : keys) known += (known.empty() ? "" : ", ") + k;
    return Error::invalid("os", "provider lxd has no image for " + spec.os_key + " (known: " + known + ")");
  }

  json config = json::object();
  if (spec.memory_mb > 0) config["limits.memory"] = std::to_string(spec.memory_mb) + "MB";
  for (auto& [k, v] : spec.labels) config[std::string(kLabelPrefix) + k] = v;
  json body = {{"name", spec.name},
               {"type", "container"},
               {"profiles", json::array({s_.profile})},
               {"source", source},
               {"config", config}};
  body["devices"] = json::object();
  // replaces the profile's root disk: the machine's files on that pool
  if (!s_.pool.empty()) body["devices"]["root"] = {{"type", "disk"}, {"path", "/"}, {"pool", s_.pool}};
  if (!s_.nic.type.empty()) {
    // replaces the profile's eth0: the machine sits on the host's LAN
    body["devices"]["eth0"] = {{"type", "nic"}, {"nictype", s_.nic.type}, {"parent", s_.nic.parent}, {"name", "eth0"}};
    if (!spec.address.empty()) config["user.ads-net.address"] = spec.address;  // for people reading `lxc config show`
    body["config"] = config;
  }
  std::string target;
  // releases this create's reservation whatever way it returns
  struct Reservation {
    LxdProvider* p = nullptr;
    std::string member;
    uint64_t mb = 0;
    ~Reservation() {
      if (!p) return;
      std::lock_guard<std::mutex> lk(p->place_mu_);
      auto& v = p->pending_mb_[member];
      v = v > mb ? v - mb : 0;
      if (v == 0) p->pending_mb_.erase(member);
    }
  } reservation;
  if (s_.placement == "ads") {
    std::unique_lock<std::mutex> lk(place_mu_);  // read, pick and reserve as one step
    auto load = cluster_load();
    if (!load) return load.error();
    add_pending(*load, pending_mb_);
    auto member = pick_member(*load, spec.memory_mb);
    if (!member) return Error::make(member.error().code, "placing " + spec.name + ": " + member.error().message);
    target = *member;
    pending_mb_[target] += spec.memory_mb;
    reservation.member = target;  // (fields, not a temporary whose destructor would release it now)
    reservation.mb = spec.memory_mb;
    reservation.p = this;
    lk.unlock();
    if (progress) {
      std::string figures;
      for (const auto& m : *load)
        figures +=
            (figures.empty() ? "" : ", ") + m.name + " " + m.status + " " + std::to_string(available_mb(m)) + " MB";
      progress("cluster member " + target + " chosen (memory available: " + figures + ")");
    }
  }
  if (progress)
    progress("creating container " + spec.name + " from image " + image_said + " (for " + spec.os_key + ")");
  auto r = call("POST", "/1.0/instances" + (target.empty() ? std::string() : "?target=" + url_escape_path(target)),
                body.dump());
  if (!r) return r.error();
  if (r->status == 409 ||
      (r->status >= 400 && lxd_message(r->body, r->status).find("already exists") != std::string::npos))
    return Error::make("conflict", "a container named " + spec.name + " already exists");
  auto st = wait_operation(*r, "creating container " + spec.name);
  if (!st && !s_.pool.empty() && st.error().message.find("torage pool") != std::string::npos)
    return Error::make(st.error().code,
                       st.error().message + " (the pool the LXD provider's setting names: " + s_.pool + ")");
  if (!st) return st;
  if (target.empty() && progress) {
    auto m = inspect(spec.name);
    if (m && !m->location.empty()) progress("LXD placed " + spec.name + " on cluster member " + m->location);
  }
  // files the image carries already (the agent, when the image was built
  // with the same binary) are not pushed again
  std::map<std::string, std::string> in_image;
  // (only an image of this host's own: one from an image server is no ADS image)
  if (!image_from_server &&
      std::any_of(files.begin(), files.end(), [](const FileToPlace& f) { return !f.sha256.empty(); })) {
    auto manifest = pull_file(spec.name, kImageManifest, 64 * 1024);
    if (manifest) in_image = parse_image_manifest(*manifest);
    else if (progress)
      progress("cannot read the image's list of files (" + manifest.error().message + "): placing every file");
  }
  if (spec.warm) {
    // its agent must wait for claim(): only an ADS image's init of format-5
    // on does (scripts/build-image.sh lists "warm-claim" in its features)
    auto features = image_from_server ? Result<std::string>(std::string()) : pull_file(spec.name, kImageFeatures, 4096);
    if (!features || features->find("warm-claim") == std::string::npos) {
      (void)destroy(spec.name);
      return Error::make("unsupported", "image " + image_said + " cannot make warm machines (its init does not wait " +
                                            "for a claim); scripts/build-image.sh --force rebuilds it");
    }
  }
  for (const auto& f : files) {
    if (!f.sha256.empty()) {
      auto it = in_image.find(f.path);
      if (it != in_image.end() && it->second == f.sha256) {
        if (progress) progress(f.path + " is in the image already (sha256 " + f.sha256.substr(0, 12) + "): not placed");
        continue;
      }
    }
    if (progress) progress("placing " + f.path + " (" + std::to_string(f.content.size()) + " bytes)");
    st = push_file(spec.name, f);
    if (!st) return st;
  }
  return Status::Ok();
}

// A warm machine's config given the identity of `spec`: its labels (the
// warm label gone) and memory limit, in one PUT of the writable part (PATCH
// cannot remove a key). No ETag: the store gave this machine to this claim alone.
Status LxdProvider::put_identity(const std::string& name, const json& meta, const MachineSpec& spec,
                                 const ProgressFn& progress) {
  json config = meta.value("config", json::object());
  config.erase(std::string(kLabelPrefix) + kWarmLabel);
  for (const auto& [k, v] : spec.labels) config[std::string(kLabelPrefix) + k] = v;
  if (spec.memory_mb > 0) config["limits.memory"] = std::to_string(spec.memory_mb) + "MB";
  json put = {{"config", config}};
  for (const char* k : {"architecture", "devices", "ephemeral", "profiles", "stateful", "description"})
    if (meta.contains(k)) put[k] = meta[k];
  if (progress) progress("claiming warm machine " + name);
  auto u = call("PUT", "/1.0/instances/" + name, put.dump());
  if (!u) return u.error();
  if (u->status == 404) return Error::make("not_found", "no container " + name);
  return wait_operation(*u, "claiming container " + name);
}

Status LxdProvider::claim(const std::string& name, const MachineSpec& spec, const ProgressFn& progress) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name: " + name);
  auto r = call("GET", "/1.0/instances/" + name);
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name);
  if (r->status != 200) return Error::make("failed", lxd_message(r->body, r->status));
  const json meta = r->body.value("metadata", json::object());
  const json config = meta.value("config", json::object());
  const std::string warm_key = std::string(kLabelPrefix) + kWarmLabel;
  // a claim tried again after its config was put (its files failed): the
  // files again, not the config
  bool put_done = false;
  if (config.is_object() && !config.contains(warm_key) && !spec.labels.empty()) {
    put_done = true;
    for (const auto& [k, v] : spec.labels) {
      auto it = config.find(std::string(kLabelPrefix) + k);
      put_done = put_done && it != config.end() && it->is_string() && *it == v;
    }
  }
  if (!put_done && (!config.is_object() || !config.contains(warm_key)))
    return Error::make("conflict", "container " + name + " is not a warm machine");
  if (meta.value("status", "") != "Running")
    return Error::make("conflict", "warm machine " + name + " is " + meta.value("status", std::string("?")));
  if (!put_done) {
    if (auto st = put_identity(name, meta, spec, progress); !st) return st;
  }
  // the machine's own files, then the mark its init waits for: the agent
  // starts once every file is complete (scripts/build-image.sh, ads-init).
  // An image that can make warm machines has /etc/ads-agent: the files
  // there go in one call each (under 20 claims at once LXD's calls queue).
  auto in_agent_dir = [](const std::string& path) {
    return path.rfind("/etc/ads-agent/", 0) == 0 && path.find('/', 15) == std::string::npos;
  };
  for (const auto& f : spec.files) {
    if (!f.sha256.empty()) continue;  // placed when it was made
    if (progress) progress("placing " + f.path + " (" + std::to_string(f.content.size()) + " bytes)");
    // (an image built before it had that directory: with its parents)
    if (auto st = push_file(name, f, !in_agent_dir(f.path)); !st && !push_file(name, f)) return st;
  }
  return push_file(name, {kClaimedMark, "", 0600}, false);
}

std::map<std::string, std::string> LxdProvider::parse_image_manifest(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    // "<64 lowercase hex>  /path" (two spaces: text mode; " *": binary mode)
    if (line.size() < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') || line[66] != '/') continue;
    const std::string hex = line.substr(0, 64);
    if (hex.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
    out[line.substr(66)] = hex;
  }
  return out;
}

Result<std::string> LxdProvider::pull_file(const std::string& name, const std::string& path, size_t max_bytes) {
  http::ClientRequest get;
  get.url = "http://lxd/1.0/instances/" + name + "/files?path=" + url_escape_path(path);
  get.unix_socket = s_.socket;
  get.max_body_bytes = max_bytes;
  auto g = http::request(get);
  if (!g) {
    if (g.error().code == "too_large") return std::string();  // no manifest of ours
    return Error::make(g.error().code,
                       "reading " + path + " in " + name + " through " + s_.socket + ": " + g.error().message);
  }
  if (g->status == 404) return std::string();
  if (g->status != 200)
    return Error::make("failed", "reading " + path + " in " + name + ": " +
                                     lxd_message(json::parse(g->body, nullptr, false), g->status));
  return g->body;
}

Status LxdProvider::change_state(const std::string& name, const std::string& action) {
  json body = {{"action", action}, {"timeout", 30}};
  if (action == "stop") body["force"] = true;
  auto r = call("PUT", "/1.0/instances/" + name + "/state", body.dump());
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name);
  return wait_operation(*r, action + " container " + name);
}

Status LxdProvider::start(const std::string& name) { return change_state(name, "start"); }

Status LxdProvider::stop(const std::string& name) {
  auto m = inspect(name);
  if (!m) return m.error();
  if (m->status == "Stopped") return Status::Ok();
  return change_state(name, "stop");
}

Status LxdProvider::destroy(const std::string& name) {
  auto m = inspect(name);
  if (!m) {
    if (m.error().code == "not_found") return Status::Ok();
    return m.error();
  }
  if (m->status != "Stopped") {
    auto st = change_state(name, "stop");
    if (!st && st.error().code != "not_found") return st;
  }
  auto r = call("DELETE", "/1.0/instances/" + name);
  if (!r) return r.error();
  if (r->status == 404) return Status::Ok();
  return wait_operation(*r, "deleting container " + name);
}

Machine LxdProvider::to_machine(const json& inst, const json& state) {
  Machine m;
  m.name = inst.value("name", "");
  m.status = inst.value("status", "");
  m.location = inst.value("location", "");
  if (m.location == "none") m.location.clear();  // LXD's word outside a cluster
  if (inst.contains("config") && inst["config"].is_object()) {
    for (auto& [k, v] : inst["config"].items()) {
      if (k.rfind(kLabelPrefix, 0) == 0 && v.is_string()) m.labels[k.substr(std::string(kLabelPrefix).size())] = v;
    }
  }
  if (state.is_object() && state.contains("network") && state["network"].is_object()) {
    for (auto& [ifname, nic] : state["network"].items()) {
      if (ifname == "lo" || !nic.contains("addresses")) continue;
      for (auto& a : nic["addresses"]) {
        if (a.value("family", "") == "inet" && a.value("scope", "") == "global") {
          m.address = a.value("address", "");
          return m;
        }
      }
    }
  }
  return m;
}

Result<Machine> LxdProvider::inspect(const std::string& name) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name: " + name);
  auto r = call("GET", "/1.0/instances/" + name);
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name);
  if (r->status != 200) return Error::make("failed", lxd_message(r->body, r->status));
  auto s = call("GET", "/1.0/instances/" + name + "/state");
  if (!s) return s.error();
  return to_machine(r->body.value("metadata", json::object()), s->body.value("metadata", json::object()));
}

Result<std::string> LxdProvider::wait_address(const std::string& name, std::chrono::milliseconds total) {
  auto deadline = std::chrono::steady_clock::now() + total;
  std::string last = "no address yet";
  auto pause = std::chrono::milliseconds(25);  // often at first (a DHCP lease takes ~0.3 s), then every 200 ms
  while (true) {
    auto m = inspect(name);
    if (m && !m->address.empty()) return m->address;
    if (!m) last = m.error().message;
    if (m && m->status != "Running") last = "container is " + m->status;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
  return Error::make("timeout", "container " + name + " got no IPv4 address within " +
                                    std::to_string(total.count() / 1000) + " s (" + last + ")");
}

Result<std::vector<Machine>> LxdProvider::list() {
  auto r = call("GET", "/1.0/instances?recursion=2");
  if (!r) return r.error();
  if (r->status != 200) return Error::make("failed", lxd_message(r->body, r->status));
  std::vector<Machine> out;
  for (auto& inst : r->body.value("metadata", json::array())) {
    Machine m = to_machine(inst, inst.value("state", json::object()));
    if (m.labels.count("deployment") || m.labels.count(kWarmLabel)) out.push_back(std::move(m));
  }
  return out;
}

std::vector<MemberLoad> LxdProvider::member_loads(const json& members, const std::map<std::string, json>& memory,
                                                  const json& instances) {
  constexpr uint64_t kMiB = 1024 * 1024;
  std::vector<MemberLoad> out;
  std::map<std::string, uint64_t> total_mb;
  if (members.is_array()) {
    for (const auto& m : members) {
      if (!m.is_object() || !m.contains("server_name") || !m["server_name"].is_string()) continue;
      MemberLoad l;
      l.name = m["server_name"];
      l.status = m.value("status", "");
      auto mem = memory.find(l.name);
      if (mem != memory.end() && mem->second.is_object()) {
        auto num = [&](const char* k) -> uint64_t {
          return mem->second.contains(k) && mem->second[k].is_number_unsigned() ? mem->second[k].get<uint64_t>() : 0;
        };
        uint64_t total = num("total"), used = num("used");
        l.free_mb = total > used ? (total - used) / kMiB : 0;
        total_mb[l.name] = total / kMiB;
      }
      out.push_back(std::move(l));
    }
  }
  if (instances.is_array()) {
    for (const auto& inst : instances) {
      if (!inst.is_object()) continue;
      std::string loc = inst.value("location", "");
      const json* cfg = nullptr;
      for (const char* k : {"expanded_config", "config"}) {
        if (inst.contains(k) && inst[k].is_object() && inst[k].contains("limits.memory")) {
          cfg = &inst[k];
          break;
        }
      }
      if (!cfg || !(*cfg)["limits.memory"].is_string()) continue;
      for (auto& l : out) {
        if (l.name != loc) continue;
        auto mb = parse_lxd_memory_mb((*cfg)["limits.memory"].get<std::string>(), total_mb[l.name]);
        if (mb) l.reserved_mb += *mb;
      }
    }
  }
  return out;
}

Result<std::vector<MemberLoad>> LxdProvider::cluster_load() {
  auto c = call("GET", "/1.0/cluster");
  if (!c) return c.error();
  const json& cm = c->body.value("metadata", json::object());
  if (c->status != 200 || !cm.is_object() || !cm.value("enabled", false))
    return Error::make("unavailable", "placement \"ads\" needs an LXD cluster, and the LXD on " + s_.socket +
                                          " is not clustered (use placement \"lxd\")");
  auto ms = call("GET", "/1.0/cluster/members?recursion=1");
  if (!ms) return ms.error();
  if (ms->status != 200) return Error::make("failed", "listing cluster members: " + lxd_message(ms->body, ms->status));
  json members = ms->body.value("metadata", json::array());
  std::map<std::string, json> memory;
  for (auto& m : members) {
    if (!m.is_object() || m.value("status", "") != "Online" || !m.contains("server_name") ||
        !m["server_name"].is_string())
      continue;
    std::string name = m["server_name"];
    auto r = call("GET", "/1.0/resources?target=" + url_escape_path(name));
    if (!r) return r.error();
    if (r->status != 200) {
      // e.g. a member that just went away and is not yet called offline
      // ("Missing event connection with target cluster member")
      m["status"] = "Unreachable (" + lxd_message(r->body, r->status) + ")";
      continue;
    }
    const json& md = r->body.value("metadata", json::object());
    memory[name] = md.is_object() ? md.value("memory", json::object()) : json::object();
  }
  auto is = call("GET", "/1.0/instances?recursion=1");
  if (!is) return is.error();
  if (is->status != 200) return Error::make("failed", "listing instances: " + lxd_message(is->body, is->status));
  return member_loads(members, memory, is->body.value("metadata", json::array()));
}

Status LxdProvider::snapshot(const std::string& name, const std::string& snap) {
  if (!valid_machine_name(name) || !valid_machine_name(snap)) return Error::invalid("name", "not a valid name");
  json body = {{"name", snap}, {"stateful", false}};
  auto r = call("POST", "/1.0/instances/" + name + "/snapshots", body.dump());
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name);
  return wait_operation(*r, "snapshot " + snap + " of " + name);
}

Status LxdProvider::restore_snapshot(const std::string& name, const std::string& snap) {
  if (!valid_machine_name(name) || !valid_machine_name(snap)) return Error::invalid("name", "not a valid name");
  json body = {{"restore", snap}};
  auto r = call("PUT", "/1.0/instances/" + name, body.dump());
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name + " or snapshot " + snap);
  return wait_operation(*r, "restoring " + name + " to snapshot " + snap);
}

Status LxdProvider::delete_snapshot(const std::string& name, const std::string& snap) {
  if (!valid_machine_name(name) || !valid_machine_name(snap)) return Error::invalid("name", "not a valid name");
  auto r = call("DELETE", "/1.0/instances/" + name + "/snapshots/" + snap, "");
  if (!r) return r.error();
  if (r->status == 404) return Status::Ok();  // the snapshot, or the container with all its snapshots, is gone
  return wait_operation(*r, "deleting snapshot " + snap + " of " + name);
}

// LXD's exec with recorded output: the command runs under coreutils'
// `timeout` (the image's), LXD keeps its stdout and stderr in log files of
// the instance, which are read and then deleted.
Result<ExecResult> LxdProvider::exec(const std::string& name, const std::vector<std::string>& argv, int timeout_s,
                                     size_t max_bytes) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name");
  if (argv.empty()) return Error::invalid("command", "is empty");
  std::vector<std::string> cmd = {"timeout", "-k", "5", std::to_string(timeout_s)};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  json body = {{"command", cmd},
               {"environment",
                {{"HOME", "/root"},
                 {"LANG", "C.UTF-8"},
                 {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}},
               {"wait-for-websocket", false},
               {"interactive", false},
               {"record-output", true}};
  auto r = call("POST", "/1.0/instances/" + name + "/exec", body.dump());
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name);
  if (r->status < 400 && (!r->body.contains("operation") || !r->body["operation"].is_string()))
    return Error::make("failed", "exec in " + name + ": LXD gave no operation");
  auto md = await_operation(*r, "exec in " + name, timeout_s + 15);  // killed at timeout_s (+5 s grace)
  if (!md) return md.error();
  const json inner = md->is_object() ? *md : json::object();
  ExecResult out;
  out.exit_code = inner.value("return", -1);
  const json files = inner.value("output", json::object());
  for (const char* fd : {"1", "2"}) {
    if (!files.contains(fd) || !files[fd].is_string()) continue;
    std::string path = files[fd];
    http::ClientRequest get;
    get.url = "http://lxd" + path;
    get.unix_socket = s_.socket;
    get.max_body_bytes = std::max<size_t>(max_bytes + 1, 16u << 20);  // then cut to max_bytes
    auto g = http::request(get);
    std::string text = g && g->status == 200 ? g->body : "";
    if (!g && g.error().code == "too_large") {
      text = "(more than 16 MiB of output: not kept)";
      out.truncated = true;
    }
    if (text.size() > max_bytes) {
      text.resize(max_bytes);
      out.truncated = true;
    }
    (std::string(fd) == "1" ? out.out : out.err) = std::move(text);
    (void)call("DELETE", path);
  }
  return out;
}

Result<std::unique_ptr<ShellSession>> LxdProvider::open_shell(const std::string& name, const TerminalSize& size) {
  if (!valid_machine_name(name)) return Error::invalid("name", "not a valid machine name");
  if (auto st = check_terminal_size(size.cols, size.rows); !st) return st.error();
  json body = {{"command", kLoginShell},
               {"environment",
                {{"HOME", "/root"},
                 {"USER", "root"},
                 {"TERM", size.term},
                 {"LANG", "C.UTF-8"},
                 {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}},
               {"wait-for-websocket", true},
               {"interactive", true},
               {"width", size.cols},
               {"height", size.rows},
               {"record-output", false}};
  auto r = call("POST", "/1.0/instances/" + name + "/exec", body.dump());
  if (!r) return r.error();
  if (r->status == 404) return Error::make("not_found", "no container " + name);
  if (r->status >= 400)
    return Error::make("failed", "a shell in " + name + ": LXD answered " + std::to_string(r->status));
  const json md = r->body.value("metadata", json::object());
  const json fds = md.is_object() && md.contains("metadata") && md["metadata"].is_object()
                       ? md["metadata"].value("fds", json::object())
                       : json::object();
  if (!r->body.contains("operation") || !r->body["operation"].is_string() || !fds.is_object() || !fds.contains("0") ||
      !fds["0"].is_string() || !fds.contains("control") || !fds["control"].is_string())
    return Error::make("failed", "a shell in " + name + ": LXD gave no exec websockets");
  auto [op, query] = split_operation(r->body["operation"]);
  Reply started = *r;
  auto exit_code = [this, started, name](std::chrono::milliseconds wait) -> Result<int> {
    int seconds = static_cast<int>(std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(wait).count()));
    auto done = await_operation(started, "a shell in " + name, seconds);
    if (!done) return done.error();
    return done->is_object() ? done->value("return", -1) : -1;
  };
  return connect_lxd_shell({s_.socket, op, query, fds["0"].get<std::string>(), fds["control"].get<std::string>()},
                           exit_code, std::chrono::seconds(10));
}

}  // namespace ads
