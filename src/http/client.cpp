#include "http/client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace ads::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Ctx {
  const ClientRequest* req;
  ClientResponse* res;
  bool aborted = false;
};

size_t on_body(char* ptr, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Ctx*>(ud);
  size_t len = size * n;
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
  add_header_line(std::string(ptr, size * n), static_cast<Ctx*>(ud)->res->headers);
  return size * n;
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

  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK && !(ctx.aborted && rc == CURLE_WRITE_ERROR)) {
    std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    std::string where = req.unix_socket.empty() ? req.url : req.unix_socket;
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
