#include "providers/aws/ec2_client.h"

#include <boost/property_tree/xml_parser.hpp>
#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

namespace ads::aws {
namespace {

const std::set<std::string> kThrottling = {"RequestLimitExceeded", "Throttling", "ThrottlingException",
                                           "RequestThrottled", "TooManyRequestsException"};
const std::set<std::string> kCapacity = {"InsufficientInstanceCapacity", "InsufficientHostCapacity",
                                         "InsufficientReservedInstanceCapacity"};
const std::set<std::string> kAuth = {"AuthFailure",           "UnauthorizedOperation",
                                     "SignatureDoesNotMatch", "InvalidClientTokenId",
                                     "IncompleteSignature",   "MissingAuthenticationToken",
                                     "ExpiredToken",          "RequestExpired",
                                     "OptInRequired",         "Blocked"};
const std::set<std::string> kServer = {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"};

bool parse_xml(const std::string& body, Xml* out) {
  std::istringstream in(body);
  try {
    boost::property_tree::read_xml(in, *out, boost::property_tree::xml_parser::trim_whitespace);
    return !out->empty();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::string form_encode(const Params& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    for (const std::string* s : {&k, &v}) {
      for (unsigned char c : *s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
          out.push_back(static_cast<char>(c));
        } else {
          char b[4];
          std::snprintf(b, sizeof b, "%%%02X", c);
          out += b;
        }
      }
      if (s == &k) out += '=';
    }
  }
  return out;
}

Ec2Error parse_ec2_error(const std::string& body) {
  Xml doc;
  Ec2Error e;
  if (!parse_xml(body, &doc)) return e;
  // <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
  auto resp = doc.get_child_optional("Response");
  if (!resp) return e;
  auto err = resp->get_child_optional("Errors.Error");
  if (!err) return e;
  e.code = err->get("Code", "");
  e.message = err->get("Message", "");
  e.request_id = resp->get("RequestID", resp->get("RequestId", ""));
  return e;
}

Ec2Client::Ec2Client(Ec2Settings s, CredentialSource& creds) : s_(std::move(s)), creds_(creds) {
  endpoint_ = s_.endpoint.empty() ? "https://ec2." + s_.region + ".amazonaws.com/" : s_.endpoint;
  sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

Result<Xml> Ec2Client::call(const std::string& action, const Params& params) {
  Params all = {{"Action", action}, {"Version", "2016-11-15"}};
  all.insert(all.end(), params.begin(), params.end());
  SignedRequest req;
  req.url = endpoint_;
  req.region = s_.region;
  req.service = "ec2";
  req.body = form_encode(all);
  req.content_type = "application/x-www-form-urlencoded; charset=utf-8";
  req.timeout_ms = s_.timeout_ms;
  req.connect_to = s_.connect_to;
  auto backoff = s_.backoff;
  std::string last;
  std::string last_code = "unavailable";
  int attempts = std::max(1, s_.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      sleep_(backoff);
      backoff = std::min(backoff * 2, s_.max_backoff);
    }
    auto creds = creds_.get();
    if (!creds)
      return Error::make(creds.error().code == "unavailable" ? "unavailable" : "auth",
                         "EC2 " + action + ": no credentials: " + creds.error().message);
    std::vector<std::string> secrets = {creds->secret_access_key, creds->session_token};
    auto res = send_signed(req, *creds);
    if (!res) {
      // the request may or may not have reached EC2; callers make mutating
      // calls idempotent (ClientToken) so that trying again is safe
      last = redact(res.error().message, secrets);
      last_code = res.error().code;
      continue;
    }
    if (res->status == 200) {
      Xml doc;
      if (!parse_xml(res->body, &doc))
        return Error::make(
            "failed", "EC2 " + action + ": the answer is not XML (" + std::to_string(res->body.size()) + " bytes)");
      for (auto& [name, node] : doc)
        if (!name.empty() && name[0] != '<') return node;  // the <ActionResponse> element
      return Error::make("failed", "EC2 " + action + ": the answer has no document element");
    }
    Ec2Error e = parse_ec2_error(res->body);
    std::string what = e.code.empty() ? "HTTP " + std::to_string(res->status)
                                      : e.code + ": " + redact(e.message, secrets) +
                                            (e.request_id.empty() ? "" : " (request " + e.request_id + ")");
    std::string msg = "EC2 " + action + " failed: " + what;
    if (kAuth.count(e.code) || (e.code.empty() && (res->status == 401 || res->status == 403))) {
      creds_.invalidate();
      return Error::make("auth", msg + " — AWS refused the credentials or their permissions; not retried");
    }
    if (kThrottling.count(e.code)) {
      last_code = "throttled";
    } else if (kCapacity.count(e.code)) {
      last_code = "capacity";
    } else if (kServer.count(e.code) || (e.code.empty() && res->status >= 500)) {
      last_code = "unavailable";
    } else {
      return Error::make("failed", msg);
    }
    last = what;
  }
  return Error::make(
      last_code, "EC2 " + action + " failed: " + last + " (gave up after " + std::to_string(attempts) + " attempts)");
}

}  // namespace ads::aws
