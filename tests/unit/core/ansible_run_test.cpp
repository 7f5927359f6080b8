// How ADS runs ansible-playbook: the variables (one JSON argument, whatever
// the values hold), the controller's inventory, the key lines the agent takes.
#include "core/ansible_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace {
using ads::controller_inventory;
using ads::playbook_vars_json;
using ads::valid_ssh_public_key;
using nlohmann::json;

const std::string kBlob = "AAAAC3NzaC1lZDI1NTE5AAAAIDrxgCvq2Q2pW8pLQ4yR1nS5a2cF9f3dLKcXyVdQ+0aB";

TEST(AnsibleRun, TheVariablesAreOneJsonObjectWhateverTheyHold) {
  std::string hostile = "x\"; rm -rf / #\n{{ lookup('pipe','id') }} \xff";
  json j = json::parse(playbook_vars_json({"/opt/lab", "/var/b", "d-1", hostile, "http://a/"}));
  EXPECT_EQ(j["ads_lab_dir"], "/opt/lab");
  EXPECT_EQ(j["ads_backup_dir"], "/var/b");
  EXPECT_EQ(j["ads_deployment_id"], "d-1");
  EXPECT_EQ(j["ads_stable_url"], "http://a/");
  // kept as data (invalid UTF-8 replaced), never split into arguments
  EXPECT_EQ(j["ads_name"].get<std::string>().rfind("x\"; rm -rf / #\n{{ lookup('pipe','id') }} ", 0), 0u);
  EXPECT_EQ(j.size(), 5u);
}

TEST(AnsibleRun, TheEnvironmentFixesTheOutputFormatTheEngineReads) {
  auto env = ads::playbook_env();
  auto has = [&](const std::string& e) { return std::find(env.begin(), env.end(), e) != env.end(); };
  EXPECT_TRUE(has("ANSIBLE_STDOUT_CALLBACK=default"));
  EXPECT_TRUE(has("ANSIBLE_CALLBACK_RESULT_FORMAT=json"));
  EXPECT_TRUE(has("ANSIBLE_NOCOLOR=1"));
  EXPECT_TRUE(has("PYTHONUNBUFFERED=1"));
}

TEST(AnsibleRun, TheInventoryHasTheOneMachine) {
  json inv = json::parse(controller_inventory("cse02", "10.99.0.7", 22, "/ads/key"));
  ASSERT_TRUE(inv["all"]["hosts"].contains("cse02")) << inv.dump();
  EXPECT_EQ(inv["all"]["hosts"].size(), 1u);
  json h = inv["all"]["hosts"]["cse02"];
  EXPECT_EQ(h["ansible_host"], "10.99.0.7");
  EXPECT_EQ(h["ansible_port"], 22);
  EXPECT_EQ(h["ansible_user"], "root");
  EXPECT_EQ(h["ansible_ssh_private_key_file"], "/ads/key");
  EXPECT_FALSE(h.contains("ansible_ssh_common_args")) << "the ssh options are an extra variable";
}

TEST(AnsibleRun, TheSshOptionsTrustOnlyTheRunsHostKeyAndTravelAsAnExtraVariable) {
  std::string args = ads::controller_ssh_args("/ads/known_hosts");
  for (const char* want :
       {"-o UserKnownHostsFile=/ads/known_hosts", "-o StrictHostKeyChecking=yes", "-o GlobalKnownHostsFile=/dev/null",
        "-o IdentitiesOnly=yes", "-o BatchMode=yes", "-o PasswordAuthentication=no", "-o ControlPersist=60s"})
    EXPECT_NE(args.find(want), std::string::npos) << want << " in " << args;
  EXPECT_EQ(args.find("ProxyCommand"), std::string::npos) << args;
  // from a sandbox without a network: through the relay's socket, one (quoted) argument
  args = ads::controller_ssh_args("/ads/known_hosts", "/usr/bin/nc.openbsd -U /ads/ssh.sock");
  EXPECT_NE(args.find(" -o 'ProxyCommand=/usr/bin/nc.openbsd -U /ads/ssh.sock'"), std::string::npos) << args;
  // beside the ads_* variables, in the same one JSON object
  json vars = json::parse(ads::controller_vars_json({"/opt/lab", "/var/b", "d-1", "cse02", "http://a/"}, args));
  EXPECT_EQ(vars["ansible_ssh_args"], args);
  EXPECT_EQ(vars["ads_name"], "cse02");
  EXPECT_EQ(vars.size(), 6u);
}

TEST(AnsibleRun, OnlyOneEd25519KeyLineIsAKeyTheAgentTakes) {
  EXPECT_TRUE(valid_ssh_public_key("ssh-ed25519 " + kBlob));
  EXPECT_TRUE(valid_ssh_public_key("ssh-ed25519 " + kBlob + " ads-d-1f2e@host.example"));
  for (const std::string& bad : std::vector<std::string>{
           "",
           "ssh-ed25519",
           "ssh-ed25519 ",
           "ssh-rsa " + kBlob,
           "command=\"id\" ssh-ed25519 " + kBlob,              // options would come first
           "ssh-ed25519 " + kBlob + "\nssh-ed25519 " + kBlob,  // a second line
           "ssh-ed25519 " + kBlob + " two words",
           "ssh-ed25519 " + kBlob + " ",
           "ssh-ed25519 " + kBlob + " a\"b",
           "ssh-ed25519 AAAA",                    // too short to be a key
           "ssh-ed25519 " + kBlob + "!" + kBlob,  // not base64
           "ssh-ed25519  " + kBlob,               // two spaces
           "ssh-ed25519 " + kBlob + " " + std::string(1100, 'a'),
       })
    EXPECT_FALSE(valid_ssh_public_key(bad)) << bad;
}

}  // namespace
