// AWS Signature Version 4 requests through libcurl's own signer
// (CURLOPT_AWS_SIGV4): this code never computes an HMAC itself. Also the
// credential type shared by the AWS provider's parts.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "http/client.h"

namespace ads::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // secret: never logged, never in a message
  std::string session_token;      // secret; empty for long-term keys
  // When they stop working; time_point{} for keys that do not expire.
  std::chrono::system_clock::time_point expiration{};
};

struct SignedRequest {
  std::string method = "POST";
  std::string url;     // https://ec2.eu-west-1.amazonaws.com/
  std::string region;  // eu-west-1
  std::string service = "ec2";
  std::string body;
  std::string content_type;  // set: sent and signed (e.g. application/x-www-form-urlencoded)
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, all signed
  // Tests only: a fixed X-Amz-Date (curl then signs with it, as the published
  // test vectors need) and curl's CONNECT_TO (host:port:127.0.0.1:port) so a
  // request for example.amazonaws.com reaches a local server.
  std::string amz_date;
  std::string connect_to;
  long connect_timeout_ms = 5000;
  long timeout_ms = 30000;
};

// Sends the request signed with `creds` (the session token, if any, goes in
// X-Amz-Security-Token and is signed). Transport failures: "unavailable" or
// "timeout"; any HTTP status is a successful Result. Messages never hold the
// credentials.
Result<http::ClientResponse> send_signed(const SignedRequest& req, const Credentials& creds);

// Replaces every occurrence of each non-empty secret in `text` by "[redacted]".
std::string redact(std::string text, const std::vector<std::string>& secrets);

}  // namespace ads::aws
