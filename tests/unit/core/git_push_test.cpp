// The rules of a webhook delivery (core/git_push.h): the signature check
// against GitHub's published test vector and what it refuses, the push
// payload, and the decision for a verified push.
#include "core/git_push.h"

#include <gtest/gtest.h>

namespace {

// docs.github.com, "Validating webhook deliveries", "Testing the webhook payload validation"
const char* kGitHubSecret = "It's a Secret to Everybody";
const char* kGitHubPayload = "Hello, World!";
const char* kGitHubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

TEST(GitPushTest, GitHubsPublishedTestVectorVerifies) {
  EXPECT_EQ(ads::hub_signature(kGitHubSecret, kGitHubPayload), kGitHubSignature);
  EXPECT_TRUE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, kGitHubSignature));
  // hex digits in upper case are the same bytes
  std::string upper = kGitHubSignature;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  EXPECT_TRUE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, upper));
}

TEST(GitPushTest, EveryOtherSignatureIsRefused) {
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, ""));
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, "Hello, World?", kGitHubSignature));  // another body
  EXPECT_FALSE(ads::verify_hub_signature("another secret", kGitHubPayload, kGitHubSignature));
  EXPECT_FALSE(ads::verify_hub_signature("", kGitHubPayload, kGitHubSignature));  // no secret, no match
  std::string flipped = kGitHubSignature;
  flipped.back() = '6';
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, flipped));
  std::string sha1 = std::string("sha1=") + (kGitHubSignature + 7);
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, sha1));  // the old X-Hub-Signature form
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, kGitHubSignature + 7));  // no prefix
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, std::string(kGitHubSignature) + "00"));
  std::string nonhex = kGitHubSignature;
  nonhex[10] = 'g';
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, nonhex));
  std::string spaced = kGitHubSignature;
  spaced[10] = ' ';
  EXPECT_FALSE(ads::verify_hub_signature(kGitHubSecret, kGitHubPayload, spaced));
}

TEST(GitPushTest, APushPayloadGivesTheBranchAndTheCommit) {
  const std::string sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
  auto p = ads::parse_push(R"({"ref":"refs/heads/main","before":"x","after":")" + sha +
                           R"(","repository":{"full_name":"o/r"},"pusher":{"name":"p"}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->branch, "main");
  EXPECT_EQ(p->commit, sha);
  EXPECT_FALSE(p->deleted);
  auto del = ads::parse_push(R"({"ref":"refs/heads/main","after":")" + std::string(40, '0') + R"(","deleted":true})");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(del->deleted);
  auto tag = ads::parse_push(R"({"ref":"refs/tags/v1","after":")" + sha + R"("})");
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tag->branch, "");
  auto nested = ads::parse_push(R"({"ref":"refs/heads/feature/x","after":")" + sha + R"("})");
  EXPECT_EQ(nested->branch, "feature/x");
}

TEST(GitPushTest, ABadPayloadIsRefusedNamingTheField) {
  EXPECT_EQ(ads::parse_push("{not json").error().code, "invalid");
  EXPECT_EQ(ads::parse_push("[]").error().code, "invalid");
  EXPECT_EQ(ads::parse_push(R"({"after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"})").error().field, "ref");
  EXPECT_EQ(ads::parse_push(R"({"ref":7,"after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"})").error().field, "ref");
  EXPECT_EQ(ads::parse_push(R"({"ref":"refs/heads/main"})").error().field, "after");
  EXPECT_EQ(ads::parse_push(R"({"ref":"refs/heads/main","after":"abc"})").error().field, "after");
  EXPECT_EQ(
      ads::parse_push(R"({"ref":"refs/heads/main","after":"; rm -rf /;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})").error().field,
      "after");
  EXPECT_EQ(ads::parse_push("{\"ref\":\"refs/heads/main\",\"after\":\"\xff\xfe\"}").error().code, "invalid");
}

TEST(GitPushTest, BranchesAndDeliveryIds) {
  EXPECT_TRUE(ads::validate_branch("main").ok());
  EXPECT_TRUE(ads::validate_branch("release/2.0").ok());
  EXPECT_EQ(ads::validate_branch("").error().field, "branch");
  EXPECT_EQ(ads::validate_branch("refs/heads/main").error().field, "branch");
  EXPECT_EQ(ads::validate_branch("a..b").error().field, "branch");
  EXPECT_EQ(ads::validate_branch("-x").error().field, "branch");
  EXPECT_EQ(ads::validate_branch(std::string(201, 'a')).error().field, "branch");
  EXPECT_TRUE(ads::valid_delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
  EXPECT_FALSE(ads::valid_delivery_id(""));
  EXPECT_FALSE(ads::valid_delivery_id("a b"));
  EXPECT_FALSE(ads::valid_delivery_id(std::string(101, 'a')));
}

TEST(GitPushTest, TheDecisionForAVerifiedPush) {
  ads::GitTrack t;
  t.branch = "main";
  const std::string a(40, 'a'), b(40, 'b');
  ads::GitPush p{"main", b, false};
  EXPECT_EQ(ads::decide_push(t, p, false, a), ads::PushAction::kRelease);
  EXPECT_EQ(ads::decide_push(t, p, true, a), ads::PushAction::kCoalesce);
  EXPECT_EQ(ads::decide_push(t, p, false, b), ads::PushAction::kIgnoreServing);
  EXPECT_EQ(ads::decide_push(t, {"dev", b, false}, false, a), ads::PushAction::kIgnoreBranch);
  EXPECT_EQ(ads::decide_push(t, {"", b, false}, false, a), ads::PushAction::kIgnoreBranch);  // a tag
  EXPECT_EQ(ads::decide_push(t, {"main", std::string(40, '0'), true}, false, a), ads::PushAction::kIgnoreDeleted);
  EXPECT_EQ(ads::describe(ads::PushAction::kIgnoreBranch, t, {"dev", b, false}),
            "a push to dev; the deployment tracks main");
  // the pending commit starts once the deployment is idle and running, and only if it is not serving
  t.pending_commit = b;
  EXPECT_TRUE(ads::release_pending_now(t, false, true, a));
  EXPECT_FALSE(ads::release_pending_now(t, true, true, a));
  EXPECT_FALSE(ads::release_pending_now(t, false, false, a));
  EXPECT_FALSE(ads::release_pending_now(t, false, true, b));
  t.pending_commit.clear();
  EXPECT_FALSE(ads::release_pending_now(t, false, true, a));
}

}  // namespace
