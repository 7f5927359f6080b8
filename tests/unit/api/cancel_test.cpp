// Cancel of a job through the API and the CLI (issue 14.4), and destroys
// never refused by the per-user limit (issue 16.9). The engine's workers are
// not started: a job stays queued, or is "running" when a test claims it in
// the store for another server, as a server elsewhere would.
#include <gtest/gtest.h>

#include <thread>

#include "support/build_paths.h"
#include "unit/api/api_fixture.h"

namespace {
using ads::test::ApiTest;
using ads::test::json;

class CancelApi : public ApiTest {
 protected:
  ads::ApiLimits limits() override {
    auto l = ApiTest::limits();
    l.active_jobs_per_user = 2;
    return l;
  }
  // each with a name of its own (two live labs never share one)
  std::string deploy(const std::string& tok) {
    std::string body =
        R"({"source":"https://example.invalid/labs/lab.git","name":"lab-)" + std::to_string(++made) + "\"}";
    auto r = call_as(tok, "POST", "/api/v1/deployments", body);
    EXPECT_EQ(r.status, 202) << r.body.dump();
    return r.body.value("id", "");
  }
  int made = 0;
  std::string job_of(const std::string& id) {
    return call("GET", "/api/v1/deployments/" + id + "/jobs").body["jobs"].back()["id"];
  }
  // Another server claims every claimable job, as if it ran them.
  void claim_elsewhere() {
    while (true) {
      auto c = store->claim_job("elsewhere", now(), 600000);
      ASSERT_TRUE(c.ok());
      if (!c->has_value()) return;
      auto j = **c;
      j.state = "running";
      ASSERT_TRUE(store->update_job(j).ok());
    }
  }
  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::string deployer_token(const std::string& name) {
    EXPECT_EQ(call("POST", "/api/v1/users", json{{"name", name}, {"role", "deployer"}}.dump()).status, 201);
    return call("POST", "/api/v1/tokens", json{{"name", "t"}, {"user", name}}.dump()).body["secret"];
  }
  int cli(const std::vector<std::string>& args, std::string& out, const std::string& tok = "") {
    std::vector<std::string> argv = {ADS_CLI_BIN, "--server", "http://127.0.0.1:" + std::to_string(server->port()),
                                     "--token", tok.empty() ? token : tok};
    argv.insert(argv.end(), args.begin(), args.end());
    return ads::test::run(argv, &out);
  }
};

TEST_F(CancelApi, AQueuedDeployIsCancelledAtOnceAndItsDeploymentFails) {
  std::string id = deploy(token);
  std::string job = job_of(id);
  auto r = call("POST", "/api/v1/jobs/" + job + "/cancel");
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["state"], "cancelled");
  EXPECT_EQ(r.headers["location"], "/api/v1/jobs/" + job);
  EXPECT_NE(r.body.value("error", "").find("asked by admin"), std::string::npos) << r.body.dump();
  auto d = call("GET", "/api/v1/deployments/" + id).body;
  EXPECT_EQ(d["state"], "failed");
  EXPECT_NE(d.value("error", "").find("cancelled before it started"), std::string::npos) << d.dump();
  // ended: a second cancel is a conflict
  expect_error(call("POST", "/api/v1/jobs/" + job + "/cancel"), 409);
}

TEST_F(CancelApi, NoSuchJobIs404AndAnotherDeployersJobIs403) {
  expect_error(call("POST", "/api/v1/jobs/01jzzzzzzzzzzzzzzzzzzzzzzz/cancel"), 404);
  expect_error(call("POST", "/api/v1/jobs/not-an-id/cancel"), 404);
  std::string dan = deployer_token("dan"), eve = deployer_token("eve");
  std::string id = deploy(dan);
  std::string job = job_of(id);
  expect_error(call_as(eve, "POST", "/api/v1/jobs/" + job + "/cancel"), 403);
  EXPECT_EQ(store->get_job(job)->state, "queued");  // untouched
  // the owner may; so may an admin (the first test)
  auto r = call_as(dan, "POST", "/api/v1/jobs/" + job + "/cancel");
  EXPECT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(store->get_job(job)->state, "cancelled");
}

TEST_F(CancelApi, ARunningJobIsMarkedForTheServerThatRunsIt) {
  std::string id = deploy(token);
  std::string job = job_of(id);
  claim_elsewhere();
  auto r = call("POST", "/api/v1/jobs/" + job + "/cancel");
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["state"], "running");
  EXPECT_TRUE(r.body.contains("cancel_requested_at")) << r.body.dump();
  EXPECT_GT(store->get_job(job)->cancel_requested_ms, 0);
  EXPECT_EQ(call("GET", "/api/v1/deployments/" + id).body["state"], "accepted");  // its server decides
}

TEST_F(CancelApi, DestroyCancelsTheJobUnderWayAndQueuesBehindIt) {
  std::string id = deploy(token);
  std::string job = job_of(id);
  claim_elsewhere();
  auto r = call("DELETE", "/api/v1/deployments/" + id);
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(r.body["job"]["kind"], "destroy");
  EXPECT_GT(store->get_job(job)->cancel_requested_ms, 0);
  // one destroy at a time: a second is a conflict, not a second cancel
  expect_error(call("DELETE", "/api/v1/deployments/" + id), 409);
  // a queued job is cancelled outright, and the deployment is destroyable at
  // once (dan's: admin is at the fixture's limit of 2 jobs under way)
  std::string dan = deployer_token("dan");
  std::string id2 = deploy(dan);
  std::string job2 = job_of(id2);
  auto r2 = call_as(dan, "DELETE", "/api/v1/deployments/" + id2);
  ASSERT_EQ(r2.status, 202) << r2.body.dump();
  EXPECT_EQ(store->get_job(job2)->state, "cancelled");
  EXPECT_EQ(call("GET", "/api/v1/deployments/" + id2).body["state"], "failed");
}

TEST_F(CancelApi, DestroysAreNeverRefusedByThePerUserLimit) {
  std::string dan = deployer_token("dan");
  std::string a = deploy(dan), b = deploy(dan);
  // at the limit (2): a third deploy is refused...
  auto third = call_as(dan, "POST", "/api/v1/deployments",
                       R"({"source":"https://example.invalid/labs/lab.git","name":"third"})");
  EXPECT_EQ(third.status, 429) << third.body.dump();
  claim_elsewhere();  // both run elsewhere: their cancel does not end them at once
  // ...but the destroys of both are accepted (4 jobs under way for dan)
  EXPECT_EQ(call_as(dan, "DELETE", "/api/v1/deployments/" + a).status, 202);
  EXPECT_EQ(call_as(dan, "DELETE", "/api/v1/deployments/" + b).status, 202);
  // while other work is still held to it
  auto again = call_as(dan, "POST", "/api/v1/deployments",
                       R"({"source":"https://example.invalid/labs/lab.git","name":"again"})");
  EXPECT_EQ(again.status, 429) << again.body.dump();
}

TEST_F(CancelApi, CliExitCodes) {
  std::string out;
  // 0: cancelled (a queued job ends at once)
  std::string id = deploy(token);
  std::string job = job_of(id);
  EXPECT_EQ(cli({"cancel", job}, out), 0) << out;
  EXPECT_NE(out.find("deploy job " + job + " cancelled"), std::string::npos) << out;
  // 2: a refusal (ended already 409, no such job 404, not yours 403)
  EXPECT_EQ(cli({"cancel", job}, out), 2) << out;
  EXPECT_NE(out.find("ended already"), std::string::npos) << out;
  EXPECT_EQ(cli({"cancel", "01jzzzzzzzzzzzzzzzzzzzzzzz"}, out), 2) << out;
  std::string eve = deployer_token("eve");
  std::string other = deploy(token);
  std::string other_job = job_of(other);
  EXPECT_EQ(cli({"cancel", other_job}, out, eve), 2) << out;
  EXPECT_NE(out.find("may not change"), std::string::npos) << out;
  // --detach: 0 once asked, the job still running elsewhere
  claim_elsewhere();
  EXPECT_EQ(cli({"cancel", other_job, "--detach"}, out), 0) << out;
  EXPECT_NE(out.find("asked"), std::string::npos) << out;
  EXPECT_EQ(store->get_job(other_job)->state, "running");
  // 1: the job ended otherwise before the cancel took (its server finished
  // it first): the "server" here finishes it once the CLI's cancel is recorded
  std::string late = deploy(token);
  std::string late_job = job_of(late);
  claim_elsewhere();
  std::thread finisher([&] {
    for (int i = 0; i < 600 && store->get_job(late_job)->cancel_requested_ms == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto j = store->get_job(late_job).value();
    j.state = "succeeded";
    EXPECT_TRUE(store->update_job(j).ok());
  });
  int rc = cli({"cancel", late_job}, out);
  finisher.join();
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("ended succeeded before the cancel took effect"), std::string::npos) << out;
  // 3: no server
  std::vector<std::string> argv = {ADS_CLI_BIN, "--server", "http://127.0.0.1:1", "--token", token, "cancel", job};
  EXPECT_EQ(ads::test::run(argv, &out), 3) << out;
}

}  // namespace
