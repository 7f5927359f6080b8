// The aws provider against the local fake EC2 + IMDSv2 (tests/support/fake_ec2.h),
// which checks every request's SigV4 signature with the independent verifier.
// Nothing here reaches AWS. Waits between attempts/polls are recorded instead
// of slept, so the tests check the backoff without timing anything.
#include "providers/aws/aws_provider.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "providers/aws/ec2_client.h"
#include "providers/aws/user_data.h"
#include "support/fake_ec2.h"

namespace ads {
namespace {
using nlohmann::json;

const char* kKey = "AKIDADSTEST";
const char* kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYADSTESTKEY";

// Sets the environment variable `name` to `value`, or removes it when `value`
// is null: the provider takes static keys from AWS_* in the environment when
// its settings have none, and has no other way in for them.
void set_env(const char* name, const char* value) {
  // Only the test's own thread reads the environment here: the provider and
  // its HTTP client (libcurl, which reads the proxy variables) run on it, and
  // the only other threads, the fake EC2's HTTP server, never read it.
  if (value) setenv(name, value, 1);  // NOLINT(concurrency-mt-unsafe): no other thread reads the environment
  else unsetenv(name);                // NOLINT(concurrency-mt-unsafe): no other thread reads the environment
}

class AwsProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(fake.start_error(), "");
    fake.add_key(kKey, kSecret);
  }
  json settings() const {
    return {{"region", "us-east-1"},
            {"endpoint", fake.endpoint()},
            {"access_key_id", kKey},
            {"secret_access_key", kSecret},
            {"images", {{"debian-12", "ami-0debian12example"}, {"ubuntu-22.04", "ami-0ubuntu2204example"}}},
            {"instance_types", json::array({{{"type", "t3.micro"}, {"memory_mb", 1024}, {"vcpus", 2}},
                                            {{"type", "t3.small"}, {"memory_mb", 2048}, {"vcpus", 2}},
                                            {{"type", "m5.large"}, {"memory_mb", 8192}, {"vcpus", 2}}})},
            {"subnet_id", "subnet-0abc"},
            {"security_group_ids", {"sg-0lab", "sg-0ads"}},
            {"key_name", "ads-ops"},
            {"agent_url", fake.agent_url()},
            {"poll_ms", 10},
            {"wait_timeout_s", 1},
            {"backoff_ms", 100},
            {"max_backoff_ms", 350},
            {"max_attempts", 4}};
  }
  std::unique_ptr<AwsProvider> provider(const json& s) {
    auto parsed = AwsProvider::parse_settings(s);
    EXPECT_TRUE(parsed.ok()) << parsed.error().to_string();
    auto p = std::make_unique<AwsProvider>(std::move(*parsed));
    p->set_sleep([this](std::chrono::milliseconds d) { sleeps.push_back(d.count()); });
    return p;
  }
  std::unique_ptr<AwsProvider> provider() { return provider(settings()); }
  MachineSpec spec(const std::string& name = "ads-01test") const {
    MachineSpec m;
    m.name = name;
    m.os_key = "debian-12";
    m.memory_mb = 1500;
    m.storage_mb = 20 * 1024;
    m.labels = {{"deployment", "01TEST"}, {"lab", "static-site"}};
    m.files = {{"/usr/local/bin/ads-agent", "AGENT-BINARY-BYTES", 0755},
               {"/etc/ads-agent/agent.json", R"({"secret":"deployment-secret-0123","port":9089})", 0600}};
    return m;
  }
  // Backoff waits only (the provider's polls are 10 ms).
  std::vector<long> backoffs() const {
    std::vector<long> out;
    for (long s : sleeps)
      if (s != 10) out.push_back(s);
    return out;
  }

  test::FakeEc2 fake;
  std::vector<long> sleeps;
};

TEST_F(AwsProviderTest, CreateLaunchesFromTheConfiguredAmiTypeDiskNetworkAndTagsAndWaitsForRunning) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  auto runs = fake.calls_of("RunInstances");
  ASSERT_EQ(runs.size(), 1u);
  auto& q = runs[0].params;
  EXPECT_EQ(q["ImageId"], "ami-0debian12example");
  EXPECT_EQ(q["InstanceType"], "t3.small");  // the smallest with >= 1500 MB
  EXPECT_EQ(q["SubnetId"], "subnet-0abc");
  EXPECT_EQ(q["SecurityGroupId.1"], "sg-0lab");
  EXPECT_EQ(q["SecurityGroupId.2"], "sg-0ads");
  EXPECT_EQ(q["KeyName"], "ads-ops");
  EXPECT_EQ(q["BlockDeviceMapping.1.DeviceName"], "/dev/xvda");
  EXPECT_EQ(q["BlockDeviceMapping.1.Ebs.VolumeSize"], "20");
  EXPECT_EQ(q["BlockDeviceMapping.1.Ebs.DeleteOnTermination"], "true");
  EXPECT_EQ(q["MetadataOptions.HttpTokens"], "required");
  EXPECT_FALSE(q["ClientToken"].empty());
  auto inst = fake.instances();
  ASSERT_EQ(inst.size(), 1u);
  EXPECT_EQ(inst[0].state, "running");
  EXPECT_EQ(inst[0].tags, (std::map<std::string, std::string>{{"Name", "ads-01test"},
                                                              {"ads:machine", "ads-01test"},
                                                              {"ads:deployment", "01TEST"},
                                                              {"ads:lab", "static-site"}}));
  // every request was signed with the configured key and verified by the fake
  EXPECT_EQ(fake.rejected(), 0);
  for (auto& c : fake.calls()) EXPECT_EQ(c.access_key, kKey);

  auto m = p->inspect("ads-01test");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->status, "Running");
  EXPECT_EQ(m->address, inst[0].private_ip);
  EXPECT_EQ(m->labels, (std::map<std::string, std::string>{{"deployment", "01TEST"}, {"lab", "static-site"}}));
  auto addr = p->wait_address("ads-01test", std::chrono::seconds(1));
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(*addr, inst[0].private_ip);
  auto all = p->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "ads-01test");
}

TEST_F(AwsProviderTest, UserDataIsCloudInitThatPlacesTheConfigAndFetchesTheCheckedAgent) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  auto ud = aws::unbase64(fake.calls_of("RunInstances")[0].params["UserData"]);
  ASSERT_TRUE(ud.ok());
  ASSERT_EQ(ud->rfind("#cloud-config\n", 0), 0u);
  auto doc = json::parse(ud->substr(14));
  std::map<std::string, json> files;
  for (auto& f : doc["write_files"]) files[f["path"]] = f;
  ASSERT_TRUE(files.count("/etc/ads-agent/agent.json"));
  EXPECT_EQ(files["/etc/ads-agent/agent.json"]["permissions"], "0600");
  EXPECT_EQ(*aws::unbase64(files["/etc/ads-agent/agent.json"]["content"]),
            R"({"secret":"deployment-secret-0123","port":9089})");
  EXPECT_FALSE(files.count("/usr/local/bin/ads-agent"));  // too big for user data: downloaded
  EXPECT_EQ(files["/etc/ads-agent/ads-agent.sha256"]["content"],
            aws::sha256_hex("AGENT-BINARY-BYTES") + "  /usr/local/bin/ads-agent.download\n");
  EXPECT_NE(files["/etc/systemd/system/ads-agent.service"]["content"].get<std::string>().find(
                "ExecStart=/usr/local/bin/ads-agent --config /etc/ads-agent/agent.json"),
            std::string::npos);
  ASSERT_EQ(doc["runcmd"].size(), 3u);
  // the URL is an argument of a constant script, never part of it
  EXPECT_EQ(doc["runcmd"][0][0], "sh");
  EXPECT_EQ(doc["runcmd"][0][4], fake.agent_url());
  EXPECT_EQ(doc["runcmd"][0][2].get<std::string>().find(fake.agent_url()), std::string::npos);
  EXPECT_EQ(doc["runcmd"][2], json({"systemctl", "enable", "--now", "ads-agent.service"}));
}

TEST_F(AwsProviderTest, ThrottlingIsRetriedWithBackoffThenSucceedsWithOneInstance) {
  auto p = provider();
  fake.inject("RunInstances", 503, "RequestLimitExceeded", "Request limit exceeded.", 2);
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  auto runs = fake.calls_of("RunInstances");
  ASSERT_EQ(runs.size(), 3u);
  // the same ClientToken each time: a retried launch cannot make two instances
  EXPECT_EQ(runs[0].params["ClientToken"], runs[2].params["ClientToken"]);
  EXPECT_EQ(fake.instances().size(), 1u);
  EXPECT_EQ(backoffs(), (std::vector<long>{100, 200}));
}

TEST_F(AwsProviderTest, ThrottlingRetriesAreBoundedAndTheErrorSaysSo) {
  auto p = provider();
  fake.inject("DescribeInstances", 503, "RequestLimitExceeded", "Request limit exceeded.", 10);
  auto st = p->create(spec(), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "throttled");
  EXPECT_NE(st.error().message.find("EC2 DescribeInstances failed: RequestLimitExceeded: Request limit exceeded."),
            std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("gave up after 4 attempts"), std::string::npos) << st.error().message;
  EXPECT_EQ(fake.calls_of("DescribeInstances").size(), 4u);
  EXPECT_EQ(backoffs(), (std::vector<long>{100, 200, 350}));  // doubled, capped at max_backoff_ms
  EXPECT_TRUE(fake.calls_of("RunInstances").empty());
}

TEST_F(AwsProviderTest, InsufficientCapacityIsRetriedThenReportedClearly) {
  auto p = provider();
  fake.inject("RunInstances", 500, "InsufficientInstanceCapacity",
              "We currently do not have sufficient t3.small capacity in the Availability Zone you requested.", 1);
  ASSERT_TRUE(p->create(spec("ads-a"), nullptr).ok());
  EXPECT_EQ(fake.calls_of("RunInstances").size(), 2u);

  fake.inject("RunInstances", 500, "InsufficientInstanceCapacity",
              "We currently do not have sufficient t3.small capacity in the Availability Zone you requested.", 4);
  auto st = p->create(spec("ads-b"), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "capacity");
  EXPECT_NE(st.error().message.find("InsufficientInstanceCapacity: We currently do not have sufficient t3.small"),
            std::string::npos)
      << st.error().message;
  EXPECT_EQ(fake.instances().size(), 1u);  // only ads-a
}

TEST_F(AwsProviderTest, AuthFailuresAreNotRetried) {
  auto p = provider();
  fake.inject("RunInstances", 403, "UnauthorizedOperation",
              "You are not authorized to perform this operation. Encoded authorization failure message: abc");
  auto st = p->create(spec(), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "auth");
  EXPECT_NE(st.error().message.find("UnauthorizedOperation: You are not authorized"), std::string::npos);
  EXPECT_NE(st.error().message.find("not retried"), std::string::npos);
  EXPECT_EQ(fake.calls_of("RunInstances").size(), 1u);
  EXPECT_TRUE(backoffs().empty());

  fake.inject("DescribeInstances", 401, "AuthFailure", "AWS was not able to validate the provided access credentials");
  auto m = p->inspect("ads-01test");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "auth");
  EXPECT_NE(m.error().message.find("AuthFailure"), std::string::npos);
}

TEST_F(AwsProviderTest, AWrongSecretIsRejectedByTheFakesVerifierWithAClearErrorAndNoSecret) {
  auto s = settings();
  s["secret_access_key"] = "not-the-right-secret-key-0000000000000000";
  auto p = provider(s);
  auto st = p->create(spec(), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "auth");
  EXPECT_NE(st.error().message.find("SignatureDoesNotMatch"), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().message.find("not-the-right-secret"), std::string::npos);
  EXPECT_EQ(fake.rejected(), 1);
  EXPECT_EQ(fake.rejections()[0], "signature does not match");
  EXPECT_TRUE(fake.calls().empty());  // nothing got past the signature check

  s = settings();
  s["access_key_id"] = "AKIDUNKNOWN";
  auto p2 = provider(s);
  auto l = p2->list();
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("AuthFailure: AWS was not able to validate"), std::string::npos);
}

TEST_F(AwsProviderTest, SecretsInAnAwsMessageAreRedacted) {
  auto p = provider();
  fake.inject("DescribeInstances", 400, "InvalidParameterValue", std::string("bad value ") + kSecret);
  auto l = p->list();
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, "failed");
  EXPECT_EQ(l.error().message.find(kSecret), std::string::npos) << l.error().message;
  EXPECT_NE(l.error().message.find("InvalidParameterValue: bad value [redacted]"), std::string::npos);
}

TEST_F(AwsProviderTest, AnInstanceThatDoesNotComeUpIsTerminated) {
  auto p = provider();
  fake.fail_launches("Server.InternalError: Internal error on launch");
  auto st = p->create(spec(), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("went terminated instead of running: Server.InternalError"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(fake.calls_of("TerminateInstances").size(), 1u);
  EXPECT_EQ(fake.instances_in("running").size(), 0u);
}

TEST_F(AwsProviderTest, AnInstanceWhoseWaitFailsIsTerminatedNotLeaked) {
  auto p = provider();
  // the name check passes, the launch succeeds, then every DescribeInstances
  // of the wait for "running" fails until the retries run out
  fake.inject("DescribeInstances", 500, "InternalError", "An internal error has occurred", 4, 1);
  auto st = p->create(spec(), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "unavailable");
  EXPECT_NE(st.error().message.find("InternalError"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("terminated it"), std::string::npos) << st.error().message;
  ASSERT_EQ(fake.calls_of("RunInstances").size(), 1u);
  auto t = fake.calls_of("TerminateInstances");
  ASSERT_EQ(t.size(), 1u);
  ASSERT_EQ(fake.instances().size(), 1u);
  EXPECT_EQ(t[0].params["InstanceId.1"], fake.instances()[0].id);
  EXPECT_EQ(fake.instances()[0].state, "shutting-down");
}

TEST_F(AwsProviderTest, StopStartAndDestroy) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  ASSERT_TRUE(p->start("ads-01test").ok());  // already running: no StartInstances
  EXPECT_TRUE(fake.calls_of("StartInstances").empty());
  ASSERT_TRUE(p->stop("ads-01test").ok());
  EXPECT_EQ(fake.calls_of("StopInstances").size(), 1u);
  EXPECT_EQ(p->inspect("ads-01test")->status, "Stopped");
  ASSERT_TRUE(p->start("ads-01test").ok());
  EXPECT_EQ(fake.calls_of("StartInstances").size(), 1u);
  EXPECT_EQ(p->inspect("ads-01test")->status, "Running");
  ASSERT_TRUE(p->destroy("ads-01test").ok());
  auto t = fake.calls_of("TerminateInstances");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].params["InstanceId.1"], fake.instances()[0].id);
  auto m = p->inspect("ads-01test");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "not_found");
  // already gone: fine, and nothing is terminated twice
  ASSERT_TRUE(p->destroy("ads-01test").ok());
  EXPECT_EQ(fake.calls_of("TerminateInstances").size(), 1u);
  auto s = p->stop("ads-01test");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "not_found");
}

TEST_F(AwsProviderTest, ASecondMachineWithTheSameNameIsAConflict) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  auto st = p->create(spec(), nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "conflict");
  EXPECT_EQ(fake.instances().size(), 1u);
}

TEST_F(AwsProviderTest, SnapshotIsAnAmiAndRestoreReplacesTheInstance) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  std::string old_id = fake.instances()[0].id;
  ASSERT_TRUE(p->snapshot("ads-01test", "backup-01B").ok());
  auto ci = fake.calls_of("CreateImage");
  ASSERT_EQ(ci.size(), 1u);
  EXPECT_EQ(ci[0].params["InstanceId"], old_id);
  auto images = fake.images();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].state, "available");
  EXPECT_EQ(images[0].tags["ads:machine"], "ads-01test");
  EXPECT_EQ(images[0].tags["ads:snapshot"], "backup-01B");

  ASSERT_TRUE(p->restore_snapshot("ads-01test", "backup-01B").ok());
  auto runs = fake.calls_of("RunInstances");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].params["ImageId"], images[0].id);
  EXPECT_EQ(runs[1].params.count("UserData"), 0u);  // the agent is on the image's disk
  EXPECT_EQ(fake.instance(old_id)->state, "shutting-down");
  auto m = p->inspect("ads-01test");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, "Running");
  EXPECT_NE(m->address, fake.instance(old_id)->private_ip);
  EXPECT_EQ(m->labels.at("deployment"), "01TEST");

  auto none = p->restore_snapshot("ads-01test", "backup-none");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "not_found");
}

TEST_F(AwsProviderTest, DeletingASnapshotDeregistersItsAmiThenDeletesItsEbsSnapshot) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  ASSERT_TRUE(p->snapshot("ads-01test", "b1").ok());
  ASSERT_TRUE(p->snapshot("ads-01test", "b2").ok());
  // another machine's backup with the same snapshot name must stay
  auto other = spec();
  other.name = "ads-01other";
  ASSERT_TRUE(p->create(other, nullptr).ok());
  ASSERT_TRUE(p->snapshot("ads-01other", "b1").ok());
  ASSERT_EQ(fake.images().size(), 3u);
  ASSERT_EQ(fake.snapshots().size(), 3u);

  ASSERT_TRUE(p->delete_snapshot("ads-01test", "b1").ok());
  EXPECT_EQ(fake.calls_of("DeregisterImage").size(), 1u);
  EXPECT_EQ(fake.calls_of("DeleteSnapshot").size(), 1u);
  std::set<std::string> left;
  for (auto& im : fake.images()) left.insert(im.tags["ads:machine"] + "/" + im.tags["ads:snapshot"]);
  EXPECT_EQ(left, (std::set<std::string>{"ads-01test/b2", "ads-01other/b1"}));
  left.clear();
  for (auto& sn : fake.snapshots()) left.insert(sn.tags["ads:machine"] + "/" + sn.tags["ads:snapshot"]);
  EXPECT_EQ(left, (std::set<std::string>{"ads-01test/b2", "ads-01other/b1"}));
  // the AMI goes first: AWS refuses to delete a snapshot an AMI uses
  auto calls = fake.calls();
  auto at = [&](const std::string& action) {
    return std::find_if(calls.begin(), calls.end(), [&](auto& c) { return c.action == action; }) - calls.begin();
  };
  EXPECT_LT(at("DeregisterImage"), at("DeleteSnapshot"));
  // the machine keeps running; a restore from the other backup still works
  EXPECT_EQ(p->inspect("ads-01test")->status, "Running");
  EXPECT_TRUE(p->restore_snapshot("ads-01test", "b2").ok());
  EXPECT_EQ(p->restore_snapshot("ads-01test", "b1").error().code, "not_found");

  // gone already: nothing to do, and fine
  ASSERT_TRUE(p->delete_snapshot("ads-01test", "b1").ok());
  EXPECT_EQ(fake.calls_of("DeregisterImage").size(), 1u);
  EXPECT_EQ(fake.calls_of("DeleteSnapshot").size(), 1u);
}

TEST_F(AwsProviderTest, ABackupOutlivesItsInstanceAndIsDeletedAfterDestroy) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  ASSERT_TRUE(p->snapshot("ads-01test", "b1").ok());
  ASSERT_TRUE(p->destroy("ads-01test").ok());
  EXPECT_EQ(fake.images().size(), 1u);  // destroy keeps the backups
  ASSERT_TRUE(p->delete_snapshot("ads-01test", "b1").ok());
  EXPECT_TRUE(fake.images().empty());
  EXPECT_TRUE(fake.snapshots().empty());
}

TEST_F(AwsProviderTest, AFailedSnapshotDeletionSaysWhichAndCanBeRepeated) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  ASSERT_TRUE(p->snapshot("ads-01test", "b1").ok());
  fake.inject("DeleteSnapshot", 403, "UnauthorizedOperation", "You are not authorized to perform this operation.");
  auto st = p->delete_snapshot("ads-01test", "b1");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "auth");
  EXPECT_NE(st.error().message.find("deleting EBS snapshot snap-"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("UnauthorizedOperation"), std::string::npos) << st.error().message;
  EXPECT_TRUE(fake.images().empty());
  ASSERT_EQ(fake.snapshots().size(), 1u);
  // the AMI is gone; the repeat finds the EBS snapshot by its tags
  ASSERT_TRUE(p->delete_snapshot("ads-01test", "b1").ok());
  EXPECT_TRUE(fake.snapshots().empty());
}

TEST_F(AwsProviderTest, ARestoreWhoseInstanceFailsKeepsTheOldOne) {
  auto p = provider();
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  std::string old_id = fake.instances()[0].id;
  ASSERT_TRUE(p->snapshot("ads-01test", "s1").ok());
  fake.fail_launches("Server.InternalError");
  auto st = p->restore_snapshot("ads-01test", "s1");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("the old one is kept"), std::string::npos);
  EXPECT_EQ(fake.instance(old_id)->state, "running");
}

TEST_F(AwsProviderTest, BadRequestsNameWhatIsWrong) {
  auto p = provider();
  auto m = spec();
  m.os_key = "centos-6";
  auto st = p->create(m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "os");
  EXPECT_NE(st.error().message.find("no AMI for centos-6"), std::string::npos);
  m = spec();
  m.memory_mb = 65536;
  st = p->create(m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "memory");
  m = spec();
  m.files.push_back({"/etc/big", std::string(20000, 'x'), 0644});
  st = p->create(m, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("EC2 takes at most 16384"), std::string::npos);
  EXPECT_TRUE(fake.calls_of("RunInstances").empty());
  EXPECT_EQ(*p->pick_type(0), "t3.micro");
  EXPECT_EQ(*p->pick_type(2048), "t3.small");
  EXPECT_EQ(*p->pick_type(2049), "m5.large");
}

TEST_F(AwsProviderTest, SettingsErrorsNameTheSetting) {
  struct Case {
    std::string key;
    json value;
    std::string field;
  } cases[] = {
      {"region", "", "aws.region"},
      {"region", "eu west", "aws.region"},
      {"endpoint", "ftp://x", "aws.endpoint"},
      {"images", json::object(), "aws.images"},
      {"images", {{"debian-12", "debian"}}, "aws.images"},
      {"instance_types", json::array(), "aws.instance_types"},
      {"agent_url", "", "aws.agent_url"},
      {"credentials", "magic", "aws.credentials"},
      {"address", "ipv6", "aws.address"},
      {"max_attempts", 0, "aws.max_attempts"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.key);
    auto s = settings();
    s[c.key] = c.value;
    auto r = make_provider("aws", s);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().field, c.field) << r.error().message;
  }
  auto ok = make_provider("aws", settings());
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ((*ok)->kind(), "aws");
  auto kinds = provider_kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "aws"), kinds.end());
}

TEST_F(AwsProviderTest, StaticKeysComeFromTheEnvironmentWhenNotConfigured) {
  auto s = settings();
  s.erase("access_key_id");
  s.erase("secret_access_key");
  set_env("AWS_ACCESS_KEY_ID", kKey);
  set_env("AWS_SECRET_ACCESS_KEY", kSecret);
  set_env("AWS_SESSION_TOKEN", nullptr);
  auto p = provider(s);
  set_env("AWS_ACCESS_KEY_ID", nullptr);
  set_env("AWS_SECRET_ACCESS_KEY", nullptr);
  auto l = p->list();
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(fake.calls()[0].access_key, kKey);
}

TEST_F(AwsProviderTest, ASessionTokenIsSentSignedAndChecked) {
  fake.add_key("ASIATEMPKEY", "temporary-secret", "session-token-abc");
  auto s = settings();
  s["access_key_id"] = "ASIATEMPKEY";
  s["secret_access_key"] = "temporary-secret";
  s["session_token"] = "session-token-abc";
  ASSERT_TRUE(provider(s)->list().ok());
  s["session_token"] = "session-token-wrong";
  auto l = provider(s)->list();
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, "auth");
  EXPECT_EQ(l.error().message.find("session-token-wrong"), std::string::npos);
}

// ---- IMDSv2 role credentials ----

class AwsImdsTest : public AwsProviderTest {
 protected:
  json imds_settings() const {
    auto s = settings();
    s.erase("access_key_id");
    s.erase("secret_access_key");
    s["credentials"] = "imds";
    s["imds_endpoint"] = fake.imds_endpoint();
    return s;
  }
  static std::string in(int seconds) {
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    std::tm utc{};
    gmtime_r(&t, &utc);
    char b[32];
    std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return b;
  }
};

TEST_F(AwsImdsTest, RoleCredentialsAreFetchedWithATokenAndCached) {
  fake.set_role("ads-server-role", in(6 * 3600));
  auto p = provider(imds_settings());
  ASSERT_TRUE(p->create(spec(), nullptr).ok());
  ASSERT_TRUE(p->list().ok());
  EXPECT_EQ(fake.imds_token_requests(), 1);
  EXPECT_EQ(fake.role_requests(), 1);  // cached while far from Expiration
  EXPECT_EQ(fake.rejected(), 0);
  for (auto& c : fake.calls()) EXPECT_EQ(c.access_key.rfind("ASIAFAKE", 0), 0u) << c.access_key;
}

TEST_F(AwsImdsTest, CredentialsNearExpiryAndAnExpiredTokenAreRefreshed) {
  fake.set_role("ads-server-role", in(60));  // inside the 300 s refresh margin
  auto p = provider(imds_settings());
  ASSERT_TRUE(p->list().ok());
  std::string first = fake.calls().back().access_key;
  fake.expire_imds_tokens();  // IMDS now answers 401 to the old session token
  ASSERT_TRUE(p->list().ok());
  std::string second = fake.calls().back().access_key;
  EXPECT_NE(first, second);  // new role credentials were fetched and used
  EXPECT_EQ(fake.role_requests(), 2);
  EXPECT_EQ(fake.imds_token_requests(), 2);  // the refused token was replaced
  EXPECT_EQ(fake.rejected(), 0);             // the old keys (now revoked) were never used again
  EXPECT_EQ(p->credentials().token_fetches(), 2);
}

TEST_F(AwsImdsTest, NoRoleOrNoImdsGiveClearErrors) {
  auto p = provider(imds_settings());  // the fake has no role
  auto l = p->list();
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("no IAM role attached"), std::string::npos) << l.error().message;
  EXPECT_TRUE(fake.calls().empty());

  auto s = imds_settings();
  s["imds_endpoint"] = "http://127.0.0.1:1";
  auto l2 = provider(s)->list();
  ASSERT_FALSE(l2.ok());
  EXPECT_EQ(l2.error().code, "unavailable");
  EXPECT_NE(l2.error().message.find("IMDSv2 token"), std::string::npos) << l2.error().message;
}

TEST(AwsCredentials, ParsesIso8601AndRefusesGarbage) {
  auto t = aws::parse_iso8601_utc("2026-11-25T10:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1795600800);
  EXPECT_FALSE(aws::parse_iso8601_utc("2026-11-25 10:00:00").ok());
  EXPECT_FALSE(aws::parse_iso8601_utc("2026-13-25T10:00:00Z").ok());
  EXPECT_FALSE(aws::parse_iso8601_utc("").ok());
}

TEST(AwsEc2Error, ParsesTheDocumentedErrorResponse) {
  auto e = aws::parse_ec2_error(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>"
      "<Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors>"
      "<RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>");
  EXPECT_EQ(e.code, "InvalidInstanceID.NotFound");
  EXPECT_EQ(e.message, "The instance ID 'i-1a2b3c4d' does not exist");
  EXPECT_EQ(e.request_id, "ea966190-f9aa-478e-9ede-example");
  EXPECT_EQ(aws::parse_ec2_error("<html>Bad Gateway</html>").code, "");
  EXPECT_EQ(aws::parse_ec2_error("not xml at all <").code, "");
  EXPECT_EQ(aws::form_encode({{"Action", "RunInstances"}, {"Tag.1.Value", "a b/c&d=é"}}),
            "Action=RunInstances&Tag.1.Value=a%20b%2Fc%26d%3D%C3%A9");
}

}  // namespace
}  // namespace ads
