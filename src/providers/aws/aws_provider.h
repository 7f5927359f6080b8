// AWS provider: EC2 instances through the EC2 Query API (ec2_client.h,
// signed by libcurl's SigV4). Settings (JSON), from the ADS config:
//   {"region": "eu-west-1", "endpoint": "",            // "" : https://ec2.<region>.amazonaws.com/
//    "credentials": "static" | "imds",                 // default: static when keys are given
//    "access_key_id": "", "secret_access_key": "", "session_token": "",  // else AWS_* env
//    "imds_endpoint": "http://169.254.169.254",
//    "images": {"debian-12": "ami-0123..."},           // os key -> AMI
//    "instance_types": [{"type": "t3.micro", "memory_mb": 1024, "vcpus": 2}, ...],
//    "subnet_id": "subnet-..", "security_group_ids": ["sg-.."], "key_name": "",
//    "root_device": "/dev/xvda", "volume_type": "gp3", "min_volume_gb": 8,
//    "address": "private" | "public",
//    "agent_url": "https://.../ads-agent", "agent_in_image": false,
//    "max_attempts": 5, "backoff_ms": 500, "max_backoff_ms": 20000,
//    "poll_ms": 2000, "wait_timeout_s": 600}
// A machine is the one instance (not terminated) tagged ads:machine=<name>;
// labels become ads:<label> tags, Name is the machine name. create launches
// it (RunInstances with a ClientToken, so a retried call never launches two)
// and waits for "running"; an instance that does not get there is terminated.
// Snapshots are AMIs (CreateImage, tagged ads:machine / ads:snapshot);
// restoring launches a new instance from the AMI with the same tags and then
// terminates the old one (the address changes; the agent and its config are
// on the image's disk). destroy keeps the AMIs (they are the backups, and a
// destroyed deployment can be restored); delete_snapshot deregisters one and
// deletes its EBS snapshots, which AWS would otherwise keep (and bill).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "providers/aws/credentials.h"
#include "providers/aws/ec2_client.h"
#include "providers/aws/user_data.h"
#include "providers/provider.h"

namespace ads {

class AwsProvider : public Provider {
 public:
  struct InstanceType {
    std::string type;
    uint64_t memory_mb = 0;
    int vcpus = 0;
  };
  struct Settings {
    aws::Ec2Settings ec2;
    aws::CredentialSettings creds;
    std::map<std::string, std::string> images;
    std::vector<InstanceType> instance_types = {{"t3.micro", 1024, 2},   {"t3.small", 2048, 2},
                                                {"t3.medium", 4096, 2},  {"t3.large", 8192, 2},
                                                {"t3.xlarge", 16384, 4}, {"t3.2xlarge", 32768, 8}};
    std::string subnet_id;
    std::vector<std::string> security_group_ids;
    std::string key_name;
    std::string root_device = "/dev/xvda";
    std::string volume_type = "gp3";
    uint64_t min_volume_gb = 8;
    bool public_address = false;
    aws::UserDataOptions user_data;
    std::chrono::milliseconds poll{2000};
    std::chrono::milliseconds wait_timeout{600000};
  };

  explicit AwsProvider(Settings s);
  // Errors name the setting ("invalid", field "aws.<name>").
  static Result<std::unique_ptr<Provider>> create_from(const nlohmann::json& settings);
  static Result<Settings> parse_settings(const nlohmann::json& j);

  std::string kind() const override { return "aws"; }
  Status create(const MachineSpec& spec, const ProgressFn& progress) override;
  Status start(const std::string& name) override;
  Status stop(const std::string& name) override;
  Status destroy(const std::string& name) override;
  Result<std::string> wait_address(const std::string& name, std::chrono::milliseconds total) override;
  Result<Machine> inspect(const std::string& name) override;
  Result<std::vector<Machine>> list() override;
  Result<std::vector<ImageInfo>> images() override;
  Status snapshot(const std::string& name, const std::string& snap) override;
  Status restore_snapshot(const std::string& name, const std::string& snap) override;
  Status delete_snapshot(const std::string& name, const std::string& snap) override;
  bool snapshots_outlive_machine() const override { return true; }
  // The files travel in the user data (user_data.h).
  bool files_readable_by_others() const override { return true; }
  // "unsupported", saying why: EC2 runs a command in an instance only
  // through SSM (Systems Manager), which ADS does not use.
  Result<ExecResult> exec(const std::string& name, const std::vector<std::string>& argv, int timeout_s,
                          size_t max_bytes) override;
  // The same for a shell (ads shell).
  Result<std::unique_ptr<ShellSession>> open_shell(const std::string& name, const TerminalSize& size) override;

  // The smallest type of the table with at least `memory_mb` (table order
  // breaks ties); "invalid" (field "memory") when none is big enough.
  Result<std::string> pick_type(uint64_t memory_mb) const;
  aws::Ec2Client& ec2() { return ec2_; }
  aws::CredentialSource& credentials() { return creds_; }
  void set_sleep(std::function<void(std::chrono::milliseconds)> f);

  struct Instance {
    std::string id, state, type, image, private_ip, public_ip, state_reason;
    std::map<std::string, std::string> tags;
  };

 private:
  Result<std::vector<Instance>> describe(const aws::Params& filters);
  Result<std::optional<Instance>> find(const std::string& name);
  Result<Instance> find_required(const std::string& name);
  Result<Instance> by_id(const std::string& id);
  // Polls until the instance is in `want`; fails on terminated (or stopped when
  // waiting for running) with AWS's state reason, or "timeout".
  Result<Instance> wait_state(const std::string& id, const std::string& want);
  Result<std::string> run_instance(const std::string& name, const std::string& image, const std::string& type,
                                   uint64_t volume_gb, const std::map<std::string, std::string>& tags,
                                   const std::string& user_data_b64);
  Status terminate(const std::vector<std::string>& ids);
  Machine to_machine(const Instance& i) const;

  Settings s_;
  aws::CredentialSource creds_;
  aws::Ec2Client ec2_;
  std::function<void(std::chrono::milliseconds)> sleep_;
};

}  // namespace ads
