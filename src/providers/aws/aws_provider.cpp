#include "providers/aws/aws_provider.h"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

#include "core/env.h"

namespace ads {
namespace {
using nlohmann::json;

const char* kLive[] = {"pending", "running", "stopping", "stopped"};

std::string random_suffix() {
  unsigned char b[6];
  randombytes_buf(b, sizeof b);
  char hex[sizeof b * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, b, sizeof b);
  return hex;
}

// Filter.N.Name / Filter.N.Value.M
void add_filter(aws::Params& p, int n, const std::string& name, const std::vector<std::string>& values) {
  std::string base = "Filter." + std::to_string(n);
  p.push_back({base + ".Name", name});
  for (size_t i = 0; i < values.size(); ++i) p.push_back({base + ".Value." + std::to_string(i + 1), values[i]});
}

template <typename F>
void each_item(const aws::Xml& node, const std::string& path, F f) {
  auto set = node.get_child_optional(path);
  if (!set) return;
  for (auto& [k, v] : *set)
    if (k == "item") f(v);
}

// Owned by this account and tagged as the backup `snap` of machine `name`
// (DescribeImages and DescribeSnapshots both take these).
aws::Params backup_filter(const std::string& name, const std::string& snap) {
  aws::Params f = {{"Owner.1", "self"}};
  add_filter(f, 1, "tag:ads:machine", {name});
  add_filter(f, 2, "tag:ads:snapshot", {snap});
  return f;
}

AwsProvider::Instance to_instance(const aws::Xml& x) {
  AwsProvider::Instance i;
  i.id = x.get("instanceId", "");
  i.state = x.get("instanceState.name", "");
  i.type = x.get("instanceType", "");
  i.image = x.get("imageId", "");
  i.private_ip = x.get("privateIpAddress", "");
  i.public_ip = x.get("ipAddress", "");
  i.state_reason = x.get("stateReason.message", x.get("reason", ""));
  each_item(x, "tagSet", [&](const aws::Xml& t) { i.tags[t.get("key", "")] = t.get("value", ""); });
  i.tags["<launch>"] = x.get("launchTime", "");
  return i;
}

}  // namespace

AwsProvider::AwsProvider(Settings s) : s_(std::move(s)), creds_(s_.creds), ec2_(s_.ec2, creds_) {
  if (sodium_init() < 0) std::abort();  // randombytes for ClientTokens
  sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

void AwsProvider::set_sleep(std::function<void(std::chrono::milliseconds)> f) {
  sleep_ = f;
  ec2_.set_sleep(std::move(f));
}

Result<AwsProvider::Settings> AwsProvider::parse_settings(const json& j) {
  if (!j.is_object()) return Error::invalid("aws", "the aws settings must be a JSON object");
  Settings s;
  try {
    s.ec2.region = j.value("region", "");
    if (s.ec2.region.empty()) return Error::invalid("aws.region", "region is required (e.g. \"eu-west-1\")");
    for (char c : s.ec2.region)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
        return Error::invalid("aws.region", "not a region name: " + s.ec2.region);
    s.ec2.endpoint = j.value("endpoint", "");
    if (!s.ec2.endpoint.empty() && s.ec2.endpoint.rfind("https://", 0) != 0 && s.ec2.endpoint.rfind("http://", 0) != 0)
      return Error::invalid("aws.endpoint", "endpoint must be an http(s) URL");
    s.ec2.max_attempts = j.value("max_attempts", 5);
    if (s.ec2.max_attempts < 1 || s.ec2.max_attempts > 20)
      return Error::invalid("aws.max_attempts", "max_attempts must be 1..20");
    s.ec2.backoff = std::chrono::milliseconds(j.value("backoff_ms", 500));
    s.ec2.max_backoff = std::chrono::milliseconds(j.value("max_backoff_ms", 20000));
    s.ec2.connect_to = j.value("connect_to", "");

    std::string kind = j.value("credentials", "");
    s.creds.keys.access_key_id = j.value("access_key_id", "");
    s.creds.keys.secret_access_key = j.value("secret_access_key", "");
    s.creds.keys.session_token = j.value("session_token", "");
    if (s.creds.keys.access_key_id.empty() && kind != "imds") {
      auto env = [](const char* n) { return env_var(n).value_or(""); };
      s.creds.keys.access_key_id = env("AWS_ACCESS_KEY_ID");
      s.creds.keys.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
      s.creds.keys.session_token = env("AWS_SESSION_TOKEN");
    }
    if (kind.empty()) kind = s.creds.keys.access_key_id.empty() ? "imds" : "static";
    if (kind == "imds") {
      s.creds.kind = aws::CredentialSettings::Kind::kImds;
      s.creds.keys = {};
    } else if (kind == "static") {
      if (s.creds.keys.access_key_id.empty() || s.creds.keys.secret_access_key.empty())
        return Error::invalid("aws.credentials",
                              "static credentials need access_key_id and secret_access_key (or AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY)");
    } else {
      return Error::invalid("aws.credentials", "credentials must be \"static\" or \"imds\"");
    }
    s.creds.imds_endpoint = j.value("imds_endpoint", s.creds.imds_endpoint);
    s.creds.refresh_before = std::chrono::seconds(j.value("refresh_before_s", 300));

    if (j.contains("images")) {
      if (!j["images"].is_object()) return Error::invalid("aws.images", "images must map OS keys to AMI ids");
      for (auto& [k, v] : j["images"].items()) {
        if (!v.is_string() || v.get<std::string>().rfind("ami-", 0) != 0)
          return Error::invalid("aws.images", "images." + k + " must be an AMI id (ami-...)");
        s.images[k] = v.get<std::string>();
      }
    }
    if (s.images.empty()) return Error::invalid("aws.images", "images (OS key -> AMI id) is required");
    if (j.contains("instance_types")) {
      if (!j["instance_types"].is_array() || j["instance_types"].empty())
        return Error::invalid("aws.instance_types", "instance_types must be a non-empty array");
      s.instance_types.clear();
      for (auto& t : j["instance_types"]) {
        InstanceType it{t.value("type", ""), t.value("memory_mb", uint64_t{0}), t.value("vcpus", 0)};
        if (it.type.empty() || it.memory_mb == 0)
          return Error::invalid("aws.instance_types", "each instance type needs type and memory_mb");
        s.instance_types.push_back(it);
      }
    }
    s.subnet_id = j.value("subnet_id", "");
    if (j.contains("security_group_ids"))
      s.security_group_ids = j["security_group_ids"].get<std::vector<std::string>>();
    s.key_name = j.value("key_name", "");
    s.root_device = j.value("root_device", s.root_device);
    s.volume_type = j.value("volume_type", s.volume_type);
    s.min_volume_gb = j.value("min_volume_gb", s.min_volume_gb);
    std::string addr = j.value("address", "private");
    if (addr != "private" && addr != "public")
      return Error::invalid("aws.address", "address must be \"private\" or \"public\"");
    s.public_address = addr == "public";
    s.user_data.agent_url = j.value("agent_url", "");
    s.user_data.agent_in_image = j.value("agent_in_image", false);
    if (s.user_data.agent_url.empty() && !s.user_data.agent_in_image)
      return Error::invalid("aws.agent_url",
                            "agent_url (where instances download ads-agent) or agent_in_image: true is required");
    s.poll = std::chrono::milliseconds(j.value("poll_ms", 2000));
    s.wait_timeout = std::chrono::milliseconds(j.value("wait_timeout_s", 600) * 1000L);
  } catch (const json::exception& e) {
    return Error::invalid("aws", std::string("bad aws settings: ") + e.what());
  }
  return s;
}

Result<std::unique_ptr<Provider>> AwsProvider::create_from(const json& settings) {
  auto s = parse_settings(settings);
  if (!s) return s.error();
  return std::unique_ptr<Provider>(new AwsProvider(std::move(*s)));
}

Result<std::string> AwsProvider::pick_type(uint64_t memory_mb) const {
  const InstanceType* best = nullptr;
  for (const auto& t : s_.instance_types)
    if (t.memory_mb >= memory_mb && (!best || t.memory_mb < best->memory_mb)) best = &t;
  if (!best)
    return Error::invalid("memory", "no configured instance type has " + std::to_string(memory_mb) + " MB of memory");
  return best->type;
}

Result<std::vector<AwsProvider::Instance>> AwsProvider::describe(const aws::Params& filters) {
  std::vector<Instance> out;
  std::string next;
  for (int page = 0; page < 100; ++page) {
    aws::Params q = filters;
    if (!next.empty()) q.push_back({"NextToken", next});
    auto r = ec2_.call("DescribeInstances", q);
    if (!r) return r.error();
    each_item(*r, "reservationSet", [&](const aws::Xml& res) {
      each_item(res, "instancesSet", [&](const aws::Xml& x) { out.push_back(to_instance(x)); });
    });
    next = r->get("nextToken", "");
    if (next.empty()) break;
  }
  return out;
}

Result<std::optional<AwsProvider::Instance>> AwsProvider::find(const std::string& name) {
  aws::Params f;
  add_filter(f, 1, "tag:ads:machine", {name});
  add_filter(f, 2, "instance-state-name", {std::begin(kLive), std::end(kLive)});
  auto all = describe(f);
  if (!all) return all.error();
  std::optional<Instance> best;
  // during a restore two instances carry the name: the newest one is the machine
  for (auto& i : *all)
    if (!best || i.tags["<launch>"] > best->tags["<launch>"]) best = i;
  return best;
}

Result<AwsProvider::Instance> AwsProvider::find_required(const std::string& name) {
  auto i = find(name);
  if (!i) return i.error();
  if (!*i) return Error::make("not_found", "no EC2 instance tagged ads:machine=" + name);
  return **i;
}

Result<AwsProvider::Instance> AwsProvider::by_id(const std::string& id) {
  auto all = describe({{"InstanceId.1", id}});
  if (!all) return all.error();
  for (auto& i : *all)
    if (i.id == id) return i;
  return Error::make("not_found", "EC2 does not know instance " + id);
}

Result<AwsProvider::Instance> AwsProvider::wait_state(const std::string& id, const std::string& want) {
  long polls = std::max<long>(1, s_.wait_timeout.count() / std::max<long>(1, s_.poll.count()));
  std::string last;
  for (long n = 0; n <= polls; ++n) {
    if (n > 0) sleep_(s_.poll);
    auto i = by_id(id);
    if (!i) {
      // just launched instances may not be visible yet (eventual consistency)
      if (i.error().code == "not_found" && n < 5) continue;
      return i.error();
    }
    last = i->state;
    if (i->state == want) return *i;
    bool dead = i->state == "terminated" || i->state == "shutting-down" || (want == "running" && i->state == "stopped");
    if (dead)
      return Error::make("failed", "instance " + id + " went " + i->state + " instead of " + want +
                                       (i->state_reason.empty() ? "" : ": " + i->state_reason));
  }
  return Error::make("timeout", "instance " + id + " is still " + last + ", not " + want + ", after " +
                                    std::to_string(s_.wait_timeout.count() / 1000) + " s");
}

Result<std::string> AwsProvider::run_instance(const std::string& name, const std::string& image,
                                              const std::string& type, uint64_t volume_gb,
                                              const std::map<std::string, std::string>& tags,
                                              const std::string& user_data_b64) {
  aws::Params p = {{"ImageId", image},
                   {"InstanceType", type},
                   {"MinCount", "1"},
                   {"MaxCount", "1"},
                   // one token per launch, the same for every retry of this call
                   {"ClientToken", name.substr(0, 40) + "-" + random_suffix()},
                   {"MetadataOptions.HttpTokens", "required"}};
  if (!s_.subnet_id.empty()) p.push_back({"SubnetId", s_.subnet_id});
  for (size_t i = 0; i < s_.security_group_ids.size(); ++i)
    p.push_back({"SecurityGroupId." + std::to_string(i + 1), s_.security_group_ids[i]});
  if (!s_.key_name.empty()) p.push_back({"KeyName", s_.key_name});
  if (!user_data_b64.empty()) p.push_back({"UserData", user_data_b64});
  if (volume_gb > 0) {
    p.push_back({"BlockDeviceMapping.1.DeviceName", s_.root_device});
    p.push_back({"BlockDeviceMapping.1.Ebs.VolumeSize", std::to_string(volume_gb)});
    p.push_back({"BlockDeviceMapping.1.Ebs.VolumeType", s_.volume_type});
    p.push_back({"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"});
  }
  int spec = 1;
  for (const char* rt : {"instance", "volume"}) {
    std::string base = "TagSpecification." + std::to_string(spec++);
    p.push_back({base + ".ResourceType", rt});
    int n = 1;
    for (const auto& [k, v] : tags) {
      p.push_back({base + ".Tag." + std::to_string(n) + ".Key", k});
      p.push_back({base + ".Tag." + std::to_string(n++) + ".Value", v});
    }
  }
  auto r = ec2_.call("RunInstances", p);
  if (!r) return r.error();
  std::string id;
  each_item(*r, "instancesSet", [&](const aws::Xml& x) {
    if (id.empty()) id = x.get("instanceId", "");
  });
  if (id.empty()) return Error::make("failed", "EC2 RunInstances answered without an instance id");
  return id;
}

Status AwsProvider::terminate(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  aws::Params p;
  for (size_t i = 0; i < ids.size(); ++i) p.push_back({"InstanceId." + std::to_string(i + 1), ids[i]});
  auto r = ec2_.call("TerminateInstances", p);
  if (!r) {
    if (r.error().message.find("InvalidInstanceID.NotFound") != std::string::npos) return Status::Ok();
    return r.error();
  }
  return Status::Ok();
}

Status AwsProvider::create(const MachineSpec& spec, const ProgressFn& progress) {
  auto img = s_.images.find(spec.os_key);
  if (img == s_.images.end()) {
    std::string known;
    for (auto& [k, v] : s_.images) known += (known.empty() ? "" : ", ") + k;
    return Error::invalid("os", "the aws provider has no AMI for " + spec.os_key + " (configured: " + known + ")");
  }
  auto type = pick_type(spec.memory_mb);
  if (!type) return type.error();
  auto ud = aws::cloud_config(spec.files, s_.user_data);
  if (!ud) return ud.error();
  uint64_t gb = (spec.storage_mb + 1023) / 1024;
  gb = std::max(gb, s_.min_volume_gb);
  auto existing = find(spec.name);
  if (!existing) return existing.error();
  if (*existing)
    return Error::make("conflict",
                       "an EC2 instance tagged ads:machine=" + spec.name + " already exists (" + (*existing)->id + ")");
  std::map<std::string, std::string> tags = {{"Name", spec.name}, {"ads:machine", spec.name}};
  for (const auto& [k, v] : spec.labels) tags["ads:" + k] = v;
  if (progress)
    progress("launching an EC2 " + *type + " instance from " + img->second + " (" + std::to_string(gb) + " GB)");
  auto id = run_instance(spec.name, img->second, *type, gb, tags, aws::base64(*ud));
  if (!id) return id.error();
  if (progress) progress("instance " + *id + " launched; waiting for it to run");
  auto up = wait_state(*id, "running");
  if (!up) {
    // never leave an instance behind that the caller was told did not come up
    auto t = terminate({*id});
    std::string extra = t ? "; terminated it" : "; terminating it failed too: " + t.error().message;
    return Error::make(up.error().code, up.error().message + extra);
  }
  return Status::Ok();
}

Status AwsProvider::start(const std::string& name) {
  auto i = find_required(name);
  if (!i) return i.error();
  if (i->state == "running") return Status::Ok();
  if (i->state == "stopping") {
    auto s = wait_state(i->id, "stopped");
    if (!s) return s.error();
  }
  if (i->state != "pending") {
    auto r = ec2_.call("StartInstances", {{"InstanceId.1", i->id}});
    if (!r) return r.error();
  }
  auto up = wait_state(i->id, "running");
  if (!up) return up.error();
  return Status::Ok();
}

Status AwsProvider::stop(const std::string& name) {
  auto i = find_required(name);
  if (!i) return i.error();
  if (i->state == "stopped") return Status::Ok();
  auto r = ec2_.call("StopInstances", {{"InstanceId.1", i->id}});
  if (!r) return r.error();
  auto down = wait_state(i->id, "stopped");
  if (!down) return down.error();
  return Status::Ok();
}

Status AwsProvider::destroy(const std::string& name) {
  aws::Params f;
  add_filter(f, 1, "tag:ads:machine", {name});
  add_filter(f, 2, "instance-state-name", {std::begin(kLive), std::end(kLive)});
  auto all = describe(f);
  if (!all) return all.error();
  std::vector<std::string> ids;
  for (auto& i : *all) ids.push_back(i.id);
  return terminate(ids);
}

// The AMIs tagged with the machine and snapshot names are deregistered, then
// their EBS snapshots deleted (AWS keeps them after DeregisterImage, and one
// cannot be deleted while an AMI uses it): those the AMIs' block devices name
// and those tagged so (an earlier try may have deregistered the AMI already).
Status AwsProvider::delete_snapshot(const std::string& name, const std::string& snap) {
  auto d = ec2_.call("DescribeImages", backup_filter(name, snap));
  if (!d) return d.error();
  std::vector<std::string> images;
  std::set<std::string> snapshots;
  each_item(*d, "imagesSet", [&](const aws::Xml& x) {
    images.push_back(x.get("imageId", ""));
    each_item(x, "blockDeviceMapping", [&](const aws::Xml& b) {
      std::string s = b.get("ebs.snapshotId", "");
      if (!s.empty()) snapshots.insert(s);
    });
  });
  for (const auto& image : images) {
    auto r = ec2_.call("DeregisterImage", {{"ImageId", image}});
    if (!r && r.error().message.find("InvalidAMIID.NotFound") == std::string::npos)
      return Error::make(r.error().code,
                         "deregistering AMI " + image + " (" + snap + " of " + name + "): " + r.error().message);
  }
  auto s = ec2_.call("DescribeSnapshots", backup_filter(name, snap));
  if (!s) return s.error();
  each_item(*s, "snapshotSet", [&](const aws::Xml& x) { snapshots.insert(x.get("snapshotId", "")); });
  for (const auto& id : snapshots) {
    if (id.empty()) continue;
    auto r = ec2_.call("DeleteSnapshot", {{"SnapshotId", id}});
    if (!r && r.error().message.find("InvalidSnapshot.NotFound") == std::string::npos)
      return Error::make(r.error().code,
                         "deleting EBS snapshot " + id + " (" + snap + " of " + name + "): " + r.error().message);
  }
  return Status::Ok();
}

Result<std::string> AwsProvider::wait_address(const std::string& name, std::chrono::milliseconds total) {
  long polls = std::max<long>(1, total.count() / std::max<long>(1, s_.poll.count()));
  for (long n = 0; n <= polls; ++n) {
    if (n > 0) sleep_(s_.poll);
    auto i = find_required(name);
    if (!i) return i.error();
    std::string a = s_.public_address ? i->public_ip : i->private_ip;
    if (i->state == "running" && !a.empty()) return a;
  }
  return Error::make("timeout", "instance " + name + " has no " + (s_.public_address ? "public" : "private") +
                                    " address after " + std::to_string(total.count() / 1000) + " s");
}

Machine AwsProvider::to_machine(const Instance& i) const {
  Machine m;
  m.name = i.tags.count("ads:machine") ? i.tags.at("ads:machine") : i.id;
  static const std::map<std::string, std::string> words = {
      {"pending", "Starting"}, {"running", "Running"},           {"stopping", "Stopping"},
      {"stopped", "Stopped"},  {"shutting-down", "Terminating"}, {"terminated", "Terminated"}};
  auto w = words.find(i.state);
  m.status = w == words.end() ? i.state : w->second;
  m.address = s_.public_address ? i.public_ip : i.private_ip;
  for (const auto& [k, v] : i.tags)
    if (k.rfind("ads:", 0) == 0 && k != "ads:machine") m.labels[k.substr(4)] = v;
  return m;
}

Result<Machine> AwsProvider::inspect(const std::string& name) {
  auto i = find_required(name);
  if (!i) return i.error();
  return to_machine(*i);
}

Result<std::vector<Machine>> AwsProvider::list() {
  aws::Params f;
  add_filter(f, 1, "tag-key", {"ads:machine"});
  add_filter(f, 2, "instance-state-name", {std::begin(kLive), std::end(kLive)});
  auto all = describe(f);
  if (!all) return all.error();
  std::vector<Machine> out;
  for (auto& i : *all) out.push_back(to_machine(i));
  return out;
}

Status AwsProvider::snapshot(const std::string& name, const std::string& snap) {
  auto i = find_required(name);
  if (!i) return i.error();
  std::string image_name = name + "-" + snap;
  for (auto& c : image_name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
  aws::Params p = {{"InstanceId", i->id},
                   {"Name", image_name.substr(0, 128)},
                   {"Description", "ADS backup " + snap + " of " + name},
                   {"NoReboot", "true"}};
  int spec = 1;
  for (const char* rt : {"image", "snapshot"}) {
    std::string base = "TagSpecification." + std::to_string(spec++);
    p.push_back({base + ".ResourceType", rt});
    p.push_back({base + ".Tag.1.Key", "ads:machine"});
    p.push_back({base + ".Tag.1.Value", name});
    p.push_back({base + ".Tag.2.Key", "ads:snapshot"});
    p.push_back({base + ".Tag.2.Value", snap});
  }
  auto r = ec2_.call("CreateImage", p);
  if (!r) return r.error();
  std::string image = r->get("imageId", "");
  if (image.empty()) return Error::make("failed", "EC2 CreateImage answered without an image id");
  long polls = std::max<long>(1, s_.wait_timeout.count() / std::max<long>(1, s_.poll.count()));
  for (long n = 0; n <= polls; ++n) {
    if (n > 0) sleep_(s_.poll);
    auto d = ec2_.call("DescribeImages", {{"ImageId.1", image}});
    if (!d) return d.error();
    std::string state, reason;
    each_item(*d, "imagesSet", [&](const aws::Xml& x) {
      state = x.get("imageState", "");
      reason = x.get("stateReason.message", "");
    });
    if (state == "available") return Status::Ok();
    if (state == "failed" || state == "invalid" || state == "error") {
      (void)ec2_.call("DeregisterImage", {{"ImageId", image}});
      return Error::make("failed",
                         "image " + image + " of " + name + " " + state + (reason.empty() ? "" : ": " + reason));
    }
  }
  return Error::make("timeout", "image " + image + " of " + name + " is not available after " +
                                    std::to_string(s_.wait_timeout.count() / 1000) + " s");
}

Status AwsProvider::restore_snapshot(const std::string& name, const std::string& snap) {
  auto d = ec2_.call("DescribeImages", backup_filter(name, snap));
  if (!d) return d.error();
  std::string image, state;
  each_item(*d, "imagesSet", [&](const aws::Xml& x) {
    image = x.get("imageId", "");
    state = x.get("imageState", "");
  });
  if (image.empty()) return Error::make("not_found", "no AMI tagged ads:machine=" + name + ", ads:snapshot=" + snap);
  if (state != "available") return Error::make("failed", "AMI " + image + " of snapshot " + snap + " is " + state);
  auto old = find_required(name);
  if (!old) return old.error();
  std::map<std::string, std::string> tags;
  for (const auto& [k, v] : old->tags)
    if (k[0] != '<' && k.rfind("aws:", 0) != 0) tags[k] = v;
  // the agent, its config and unit are on the image's disk: no user data
  auto id = run_instance(name, image, old->type, 0, tags, "");
  if (!id) return id.error();
  auto up = wait_state(*id, "running");
  if (!up) {
    (void)terminate({*id});
    return Error::make(up.error().code, "restoring " + name + " from " + image + ": " + up.error().message +
                                            "; terminated the new instance, the old one is kept");
  }
  auto t = terminate({old->id});
  if (!t)
    return Error::make(t.error().code, "restored " + name + " into " + *id + " but could not terminate the old " +
                                           old->id + ": " + t.error().message);
  return Status::Ok();
}

Result<ExecResult> AwsProvider::exec(const std::string&, const std::vector<std::string>&, int, size_t) {
  return Error::make(
      "unsupported",
      "aws cannot run a command in an EC2 instance: EC2 offers that only through SSM (Systems "
      "Manager), which ADS does not use, and the ADS agent runs no command sent to it; use the "
      "lab's own access to its instance instead (SSH with the EC2 key pair the ADS config names in key_name, "
      "or the EC2 serial console)");
}

Result<std::unique_ptr<ShellSession>> AwsProvider::open_shell(const std::string&, const TerminalSize&) {
  return Error::make(
      "unsupported",
      "aws cannot open a shell in an EC2 instance (ads shell works on LXD and OpenVZ): EC2 offers that only through "
      "SSM (Systems Manager), which ADS does not use, and the ADS agent runs no command sent to it; use the lab's own "
      "access to its instance instead (SSH with the EC2 key pair the ADS config names in key_name, or the EC2 serial "
      "console)");
}

Result<std::vector<ImageInfo>> AwsProvider::images() {
  std::vector<ImageInfo> out;
  for (const auto& [key, ami] : s_.images)
    out.push_back({key, ami, "unchecked", "an AMI of the region in the settings; not looked up"});
  return out;
}

}  // namespace ads
