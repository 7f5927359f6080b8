// A client of the EC2 Query API (API version 2016-11-15): form-encoded POSTs
// signed by libcurl (signed_request.h), XML answers read with
// Boost.PropertyTree. Errors in AWS's <Response><Errors><Error> form become
// an Error naming the action, AWS's code and message:
//   throttling (RequestLimitExceeded, Throttling), InsufficientInstanceCapacity
//   and 5xx answers are tried again with exponential backoff, at most
//   max_attempts times, then fail with code "throttled" / "capacity" /
//   "unavailable";
//   auth failures (AuthFailure, UnauthorizedOperation, SignatureDoesNotMatch,
//   InvalidClientTokenId...) fail at once with code "auth" (role credentials
//   are dropped so the next call fetches new ones);
//   anything else fails at once with code "failed".
// Messages never hold the secret key or the session token.
#pragma once

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "providers/aws/credentials.h"

namespace ads::aws {

struct Ec2Settings {
  std::string region = "us-east-1";
  std::string endpoint;                    // "" : https://ec2.<region>.amazonaws.com/
  int max_attempts = 5;                    // per call, throttling/capacity/5xx included
  std::chrono::milliseconds backoff{500};  // first wait, doubled each time
  std::chrono::milliseconds max_backoff{20000};
  long timeout_ms = 30000;
  std::string connect_to;  // tests: curl CONNECT_TO
};

using Params = std::vector<std::pair<std::string, std::string>>;
using Xml = boost::property_tree::ptree;

// AWS's error, parsed; empty code when the body is not an EC2 error document.
struct Ec2Error {
  std::string code, message, request_id;
};
Ec2Error parse_ec2_error(const std::string& body);

class Ec2Client {
 public:
  Ec2Client(Ec2Settings s, CredentialSource& creds);
  // Calls `action` with `params` (AWS names: "InstanceId.1", "Filter.1.Name"...);
  // the parsed response document (its root element) or the error.
  Result<Xml> call(const std::string& action, const Params& params);
  const std::string& endpoint() const { return endpoint_; }
  // Tests: replaces the sleep between attempts (so no test waits for real).
  void set_sleep(std::function<void(std::chrono::milliseconds)> f) { sleep_ = std::move(f); }

 private:
  Ec2Settings s_;
  CredentialSource& creds_;
  std::string endpoint_;
  std::function<void(std::chrono::milliseconds)> sleep_;
};

// application/x-www-form-urlencoded with RFC 3986 unreserved characters kept.
std::string form_encode(const Params& params);

}  // namespace ads::aws
