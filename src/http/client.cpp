#include "http/client.h"

#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>

namespace ads::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

using Clock = std::chrono::steady_clock;

struct Ctx {
  const ClientRequest* req;
  ClientResponse* res;
  bool aborted = false;    // on_data said stop
  bool too_large = false;  // past max_body_bytes
  bool headers_too_large = false;
  bool idle = false;   // nothing for idle_timeout_ms
  bool abort = false;  // should_abort said stop
  size_t body_bytes = 0;
  size_t header_bytes = 0;
  Clock::time_point last_byte = Clock::now();
};

size_t on_body(char* ptr, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Ctx*>(ud);
  size_t len = size * n;
  c->last_byte = Clock::now();
  c->body_bytes += len;
  if (c->req->max_body_bytes > 0 && c->body_bytes > c->req->max_body_bytes) {
    c->too_large = true;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR)
  }
  if (c->req->on_data) {
    if (!c->req->on_data(std::string(ptr, len))) {
      c->aborted = true;
      return 0;
    }
  } else {
    c->res->body.append(ptr, len);
  }
  return len;
}

size_t on_header(char* ptr, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Ctx*>(ud);
  c->last_byte = Clock::now();
  c->header_bytes += size * n;
  if (c->header_bytes > kMaxHeaderBytes) {
    c->headers_too_large = true;
    return 0;
  }
  add_header_line(std::string(ptr, size * n), c->res->headers);
  return size * n;
}

// libcurl calls it about once a second even while nothing arrives.
int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* c = static_cast<Ctx*>(ud);
  if (c->req->should_abort && c->req->should_abort()) {
    c->abort = true;
    return 1;
  }
  if (c->req->idle_timeout_ms <= 0) return 0;
  if (!c->req->idle_needs_header.empty() && !c->res->headers.count(c->req->idle_needs_header)) return 0;
  if (Clock::now() - c->last_byte >= std::chrono::milliseconds(c->req->idle_timeout_ms)) {
    c->idle = true;
    return 1;  // aborts (CURLE_ABORTED_BY_CALLBACK)
  }
  return 0;
}

std::string seconds_text(long ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", static_cast<double>(ms) / 1000.0);
  return b;
}

}  // namespace

void add_header_line(const std::string& line, std::map<std::string, std::string>& headers) {
  auto colon = line.find(':');
  if (colon == std::string::npos) return;
  std::string name = line.substr(0, colon);
  for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string value = line.substr(colon + 1);
  auto b = value.find_first_not_of(" \t\r\n");
  auto e = value.find_last_not_of(" \t\r\n");
  headers[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
}

Result<ClientResponse> request(const ClientRequest& req) {
  global_init();
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return Error::make("internal", "curl_easy_init failed");
  CURL* c = h.get();
  ClientResponse res;
  Ctx ctx{&req, &res};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy from the environment
  if (!req.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, req.unix_socket.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ctx);
  if (req.max_body_bytes > 0)  // fails at once on a larger Content-Length
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(req.max_body_bytes));
  if (req.idle_timeout_ms > 0 || req.should_abort) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &ctx);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (!req.pinned_key.empty()) {
    curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, req.pinned_key.c_str());
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);  // the pin is the check
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!req.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  struct curl_slist* hdrs = nullptr;
  hdrs = curl_slist_append(hdrs, "Expect:");
  for (auto& [k, v] : req.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hguard(hdrs, curl_slist_free_all);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

  ctx.last_byte = Clock::now();
  CURLcode rc = curl_easy_perform(c);
  std::string where = req.unix_socket.empty() ? req.url : req.unix_socket;
  if (ctx.too_large || rc == CURLE_FILESIZE_EXCEEDED)
    return Error::make("too_large", "the answer of " + where + " is larger than " + std::to_string(req.max_body_bytes) +
                                        " bytes; stopped reading it");
  if (ctx.headers_too_large)
    return Error::make("too_large", "the answer of " + where + " has more than " + std::to_string(kMaxHeaderBytes) +
                                        " bytes of headers; stopped reading it");
  if (ctx.abort) return Error::make("aborted", "the call to " + where + " was abandoned");
  if (ctx.idle)
    return Error::make("timeout",
                       where + " went silent: nothing arrived for " + seconds_text(req.idle_timeout_ms) + " s");
  if (rc != CURLE_OK && !(ctx.aborted && rc == CURLE_WRITE_ERROR)) {
    std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Error::make("timeout", "timed out talking to " + where + ": " + what);
    if (rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
      return Error::make("tls", where + " presented a different key than the pinned one: " + what);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
      return Error::make("tls", "the certificate of " + where + " is not trusted" +
                                    (req.ca_file.empty() ? std::string() : " by " + req.ca_file) + ": " + what);
    if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ENGINE_INITFAILED)
      return Error::make("tls", "TLS handshake with " + where + " failed (does it speak HTTPS?): " + what);
    return Error::make("unavailable", "cannot reach " + where + ": " + what);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

}  // namespace ads::http
