// Test and bench support: load on a URL while something switches what
// serves it (a route change in the reverse proxy, a release, a rollback).
// `threads` clients, each with one keep-alive libcurl handle (as a browser
// would reuse its connection), send `total` GETs in all; a switcher calls
// `switch_to(i)` for i = 0..switches-1, the i-th once (i+1)/(switches+1) of
// the requests have completed, so the switches fall inside the load whatever
// the machine's speed. Every request that fails to connect, times out or
// answers other than 2xx counts as a failure. Bounded: `total` requests,
// each at most `request_timeout_ms`; a switch that fails stops nothing but
// is counted.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ads::test {

struct SwitchLoadResult {
  uint64_t requests = 0;
  uint64_t failures = 0;
  int switches_done = 0;
  int switches_failed = 0;
  std::map<std::string, uint64_t> bodies;  // what answered, by body
  std::vector<std::string> first_errors;   // up to 10
  double seconds = 0;
  // The longest wait of a switch_to call (ms): how long a switch took.
  double max_switch_ms = 0;
};

struct SwitchLoadOptions {
  std::string url;   // e.g. http://127.0.0.1:8100/
  std::string host;  // "" : the URL's; else sent as the Host header (host routing)
  int threads = 4;
  uint64_t total = 2000;
  int switches = 20;
  long request_timeout_ms = 10000;
};

// One libcurl handle that keeps its connection alive between requests, as
// a browser would: GET `url` (with `host` as the Host header unless empty).
class KeepAliveClient {
 public:
  struct Got {
    CURLcode rc = CURLE_OK;
    long status = 0;
    std::string body;
    long new_connections = 0;  // connections this request opened (0: reused)
  };
  KeepAliveClient(const std::string& url, const std::string& host, long timeout_ms) : c_(curl_easy_init()) {
    if (!host.empty()) hdrs_ = curl_slist_append(hdrs_, ("Host: " + host).c_str());
    curl_easy_setopt(c_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c_, CURLOPT_HTTPHEADER, hdrs_);
    curl_easy_setopt(c_, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c_, CURLOPT_PROXY, "");
    curl_easy_setopt(
        c_, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) -> size_t {
          static_cast<std::string*>(ud)->append(p, s * n);
          return s * n;
        });
    curl_easy_setopt(c_, CURLOPT_WRITEDATA, &body_);
  }
  ~KeepAliveClient() {
    curl_slist_free_all(hdrs_);
    curl_easy_cleanup(c_);
  }
  KeepAliveClient(const KeepAliveClient&) = delete;
  KeepAliveClient& operator=(const KeepAliveClient&) = delete;
  Got get() {
    body_.clear();
    Got g;
    g.rc = curl_easy_perform(c_);
    curl_easy_getinfo(c_, CURLINFO_RESPONSE_CODE, &g.status);
    curl_easy_getinfo(c_, CURLINFO_NUM_CONNECTS, &g.new_connections);
    g.body = body_;
    return g;
  }

 private:
  CURL* c_;
  struct curl_slist* hdrs_ = nullptr;
  std::string body_;
};

inline SwitchLoadResult run_switch_load(const SwitchLoadOptions& o, const std::function<bool(int)>& switch_to) {
  SwitchLoadResult res;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<uint64_t> next{0}, done{0};
  auto t0 = std::chrono::steady_clock::now();

  auto client = [&] {
    KeepAliveClient c(o.url, o.host, o.request_timeout_ms);
    while (next.fetch_add(1) < o.total) {
      auto got = c.get();
      {
        std::lock_guard<std::mutex> lk(mu);
        ++res.requests;
        if (got.rc != CURLE_OK || got.status < 200 || got.status > 299) {
          ++res.failures;
          if (res.first_errors.size() < 10)
            res.first_errors.push_back(got.rc != CURLE_OK
                                           ? curl_easy_strerror(got.rc)
                                           : "HTTP " + std::to_string(got.status) + ": " + got.body.substr(0, 200));
        } else {
          ++res.bodies[got.body];
        }
      }
      done.fetch_add(1);
      cv.notify_all();
    }
  };

  std::thread switcher([&] {
    for (int i = 0; i < o.switches; ++i) {
      uint64_t at = o.total * static_cast<uint64_t>(i + 1) / static_cast<uint64_t>(o.switches + 1);
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return done.load() >= at; });
      }
      auto s0 = std::chrono::steady_clock::now();
      bool ok = switch_to(i);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
      std::lock_guard<std::mutex> lk(mu);
      if (ok) ++res.switches_done;
      else ++res.switches_failed;
      if (ms > res.max_switch_ms) res.max_switch_ms = ms;
    }
  });
  std::vector<std::thread> clients;
  clients.reserve(static_cast<size_t>(o.threads));
  for (int i = 0; i < o.threads; ++i) clients.emplace_back(client);
  for (auto& t : clients) t.join();
  {
    // the clients are done: a switch still waiting for its mark never comes
    std::lock_guard<std::mutex> lk(mu);
    done.store(o.total);
  }
  cv.notify_all();
  switcher.join();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace ads::test
