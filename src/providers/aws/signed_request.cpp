#include "providers/aws/signed_request.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace ads::aws {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t on_body(char* ptr, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(ptr, size * n);
  return size * n;
}

size_t on_header(char* ptr, size_t size, size_t n, void* ud) {
  http::add_header_line(std::string(ptr, size * n), *static_cast<std::map<std::string, std::string>*>(ud));
  return size * n;
}

struct Slist {
  curl_slist* p = nullptr;
  ~Slist() { curl_slist_free_all(p); }
  void add(const std::string& s) { p = curl_slist_append(p, s.c_str()); }
};

bool header_safe(const std::string& s) {
  for (unsigned char c : s)
    if (c == '\r' || c == '\n' || c == 0) return false;
  return true;
}

}  // namespace

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos))
      text.replace(pos, s.size(), "[redacted]");
  }
  return text;
}

Result<http::ClientResponse> send_signed(const SignedRequest& req, const Credentials& creds) {
  if (creds.access_key_id.empty() || creds.secret_access_key.empty())
    return Error::make("failed", "no AWS credentials to sign the request with");
  if (req.region.empty() || req.service.empty())
    return Error::make("internal", "an AWS request needs a region and a service");
  for (const auto& [k, v] : req.headers)
    if (!header_safe(k) || !header_safe(v)) return Error::make("internal", "header " + k + " holds a line break");
  if (!header_safe(creds.session_token) || creds.access_key_id.find(':') != std::string::npos)
    return Error::make("failed", "the AWS credentials are malformed (a line break, or ':' in the access key id)");

  global_init();
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return Error::make("internal", "curl_easy_init failed");
  CURL* c = h.get();
  http::ClientResponse res;
  char errbuf[CURL_ERROR_SIZE] = {0};

  std::string sigv4 = "aws:amz:" + req.region + ":" + req.service;
  Slist headers;
  if (!req.amz_date.empty()) headers.add("X-Amz-Date: " + req.amz_date);
  if (!req.content_type.empty()) headers.add("Content-Type: " + req.content_type);
  for (const auto& [k, v] : req.headers) headers.add(k + ": " + v);
  if (!creds.session_token.empty()) headers.add("X-Amz-Security-Token: " + creds.session_token);
  // No "Expect:" header to suppress 100-continue: curl would sign that empty
  // header. A short wait instead (EC2 answers 100 Continue anyway).
  Slist resolve;
  if (!req.connect_to.empty()) resolve.add(req.connect_to);

  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, creds.access_key_id.c_str());
  curl_easy_setopt(c, CURLOPT_PASSWORD, creds.secret_access_key.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.p);
  if (resolve.p) curl_easy_setopt(c, CURLOPT_CONNECT_TO, resolve.p);
  if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &res.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &res.headers);
  curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 100L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req.timeout_ms);

  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    why = redact(why, {creds.secret_access_key, creds.session_token});
    std::string code = rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "unavailable";
    return Error::make(code, req.url + ": " + why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

}  // namespace ads::aws
