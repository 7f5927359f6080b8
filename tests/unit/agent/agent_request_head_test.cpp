// Issue 15.3: the agent checks a request's signature from its head, before it
// reads the body. A client that sends only a head with a huge Content-Length
// gets its answer at once; before, the agent waited for (and buffered) up to
// 512 MiB from anyone who could reach port 9089.
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_fixture.h"

namespace {
using namespace ads::test::agent_fixture;

// Sends `head` over TLS (no body at all) and returns what the server answers
// before it closes; gives up reading after 20 s (a server waiting for the
// body answers nothing).
std::string send_head_only(uint16_t port, const std::string& head) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  std::string out;
  if (SSL_connect(ssl) == 1 && SSL_write(ssl, head.data(), static_cast<int>(head.size())) > 0) {
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  } else {
    out = "handshake failed";
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return out;
}

std::string head_of(const std::string& method, const std::string& target, size_t content_length,
                    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string h = method + " " + target + " HTTP/1.1\r\nHost: agent\r\nContent-Type: application/gzip\r\n";
  h += "Content-Length: " + std::to_string(content_length) + "\r\n";
  for (auto& [k, v] : headers) h += k + ": " + v + "\r\n";
  return h + "\r\n";
}

std::string status_line(const std::string& answer) { return answer.substr(0, answer.find("\r\n")); }

TEST_F(AgentTest, AnUnsignedRequestIsRefusedFromItsHeadWithoutReadingTheBody) {
  const size_t kHuge = 512u << 20;  // the agent's upload limit: the body itself would be accepted in size
  std::string answer = send_head_only(server->port(), head_of("PUT", "/v1/lab", kHuge, {}));
  EXPECT_EQ(status_line(answer), "HTTP/1.1 401 Unauthorized") << answer;
  EXPECT_NE(answer.find("missing signature headers"), std::string::npos) << answer;

  // signed with another secret (someone who knows the agent's public key only)
  auto forged = ads::agent::signed_headers(std::string(64, 'x'), "PUT", "/v1/lab", std::string(100, 'z'), now_s());
  answer = send_head_only(server->port(), head_of("PUT", "/v1/lab", kHuge, forged));
  EXPECT_EQ(status_line(answer), "HTTP/1.1 401 Unauthorized") << answer;
  EXPECT_NE(answer.find("bad signature"), std::string::npos) << answer;

  // a good signature replayed: refused from the head too
  auto once = ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s());
  EXPECT_EQ(raw_status("GET", "/v1/health", once), 200);
  answer = send_head_only(server->port(), head_of("GET", "/v1/health", kHuge, once));
  EXPECT_NE(answer.find("replayed nonce"), std::string::npos) << answer;

  // and the agent still serves the real client
  ads::agent::AgentClient c(base, kSecret);
  EXPECT_TRUE(c.health().ok());
}

TEST_F(AgentTest, ARequestWithoutTheBodyHashHeaderMayOnlyCarryASmallBody) {
  auto without_hash = [](std::vector<std::pair<std::string, std::string>> h) {
    std::erase_if(h, [](auto& kv) { return kv.first == ads::agent::kHeaderBodyHash; });
    return h;
  };
  // An older client signs the body itself: the agent must read the body to
  // check it, so it reads at most kUnsignedBodyLimit first.
  std::string big(ads::agent::kUnsignedBodyLimit + 1, 'b');
  auto old_style = without_hash(ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", big, now_s()));
  std::string answer = send_head_only(server->port(), head_of("PUT", "/v1/lab", big.size(), old_style));
  EXPECT_EQ(status_line(answer), "HTTP/1.1 413 Payload Too Large") << answer;

  // within the limit, such a client still works (signature over the body)
  std::string lab = lab_tarball(spec_with(R"(["true"])"));
  ASSERT_LT(lab.size(), ads::agent::kUnsignedBodyLimit);
  EXPECT_EQ(raw_status("PUT", "/v1/lab",
                       without_hash(ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", lab, now_s())), lab),
            200);
  EXPECT_EQ(raw_status("GET", "/v1/health",
                       without_hash(ads::agent::signed_headers(kSecret, "GET", "/v1/health", "", now_s()))),
            200);
}

TEST_F(AgentTest, TheBodyMustMatchItsSignedHash) {
  std::string lab = lab_tarball(spec_with(R"(["true"])"));
  auto h = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", lab, now_s());
  // another body under the signed hash
  EXPECT_EQ(raw_status("PUT", "/v1/lab", h, lab + "x"), 401);
  // the hash header changed to the other body's: the signature no longer fits
  h = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", lab, now_s());
  for (auto& [k, v] : h)
    if (k == ads::agent::kHeaderBodyHash) v = ads::agent::sha256_hex(lab + "x");
  EXPECT_EQ(raw_status("PUT", "/v1/lab", h, lab + "x"), 401);
  // malformed hash headers
  for (const std::string& bad : {std::string(64, 'G'), std::string(63, 'a'), std::string(64, 'A')}) {
    h = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", lab, now_s());
    for (auto& [k, v] : h)
      if (k == ads::agent::kHeaderBodyHash) v = bad;
    EXPECT_EQ(raw_status("PUT", "/v1/lab", h, lab), 401) << bad;
  }
  // the real thing
  ads::agent::AgentClient c(base, kSecret);
  EXPECT_TRUE(c.upload_lab(lab).ok());
}

TEST_F(AgentTest, ASignedUploadLargerThanTheLimitIsRefusedFromItsHead) {
  restart_agent([](ads::agent::AgentConfig& c) { c.max_upload_bytes = 4096; });
  std::string body(1u << 20, 'x');
  auto h = ads::agent::signed_headers(kSecret, "PUT", "/v1/lab", body, now_s());
  std::string answer = send_head_only(server->port(), head_of("PUT", "/v1/lab", body.size(), h));
  EXPECT_EQ(status_line(answer), "HTTP/1.1 413 Payload Too Large") << answer;
  EXPECT_NE(answer.find("exceeds 4096 bytes"), std::string::npos) << answer;
}

}  // namespace
