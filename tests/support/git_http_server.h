// Test support: a real git server over smart HTTP on loopback. Requests go
// to git's own `git http-backend` (CGI, fixed argv, the request in its
// environment and standard input), behind ads' HTTP server; with a user and
// password set, it asks for HTTP basic auth first, as a web server in front
// of git-http-backend would. Every Authorization header received is kept.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

#include "http/server.h"
#include "support/process.h"

namespace ads::test {

class GitHttpServer {
 public:
  // Serves the repositories under `project_root` (GIT_PROJECT_ROOT).
  GitHttpServer(std::string project_root, std::string user = "", std::string password = "")
      : root_(std::move(project_root)),
        user_(std::move(user)),
        password_(std::move(password)),
        server_(http::ServerOptions{"127.0.0.1", 0, 16 << 20, 16, 30}) {
    server_.set_filter([this](http::Request& req) -> std::optional<http::Response> { return handle(req); });
    ok_ = server_.start().ok();
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return server_.port(); }
  std::string url(const std::string& repo) const { return "http://127.0.0.1:" + std::to_string(port()) + "/" + repo; }
  std::vector<std::string> authorizations() {
    std::lock_guard<std::mutex> lk(mu_);
    return auth_seen_;
  }
  int requests() {
    std::lock_guard<std::mutex> lk(mu_);
    return requests_;
  }

  static std::string base64(const std::string& in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < in.size(); i += 3) {
      uint32_t n = static_cast<uint8_t>(in[i]) << 16;
      if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
      if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
      out += t[(n >> 18) & 63];
      out += t[(n >> 12) & 63];
      out += i + 1 < in.size() ? t[(n >> 6) & 63] : '=';
      out += i + 2 < in.size() ? t[n & 63] : '=';
    }
    return out;
  }

 private:
  http::Response handle(http::Request& req) {
    std::string auth = req.header("authorization");
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++requests_;
      if (!auth.empty()) auth_seen_.push_back(auth);
    }
    if (!user_.empty() && auth != "Basic " + base64(user_ + ":" + password_)) {
      http::Response r;
      r.status = 401;
      r.content_type = "text/plain";
      r.body = "authentication required\n";
      r.headers.push_back({"WWW-Authenticate", "Basic realm=\"git\""});
      return r;
    }
    std::string query;
    auto q = req.target.find('?');
    if (q != std::string::npos) query = req.target.substr(q + 1);
    std::vector<std::string> env = {"GIT_PROJECT_ROOT=" + root_,
                                    "GIT_HTTP_EXPORT_ALL=1",
                                    "REQUEST_METHOD=" + req.method,
                                    "PATH_INFO=" + req.path,
                                    "QUERY_STRING=" + query,
                                    "CONTENT_TYPE=" + req.header("content-type"),
                                    "CONTENT_LENGTH=" + std::to_string(req.body.size()),
                                    "REMOTE_ADDR=127.0.0.1",
                                    "GATEWAY_INTERFACE=CGI/1.1",
                                    "SERVER_PROTOCOL=HTTP/1.1",
                                    "PATH=/usr/bin:/bin"};
    if (!user_.empty()) env.push_back("REMOTE_USER=" + user_);
    std::string out;
    if (!cgi({"git", "http-backend"}, env, req.body, out)) {
      http::Response r;
      r.status = 500;
      r.content_type = "text/plain";
      r.body = "git http-backend failed\n";
      return r;
    }
    // CGI answer: header lines, a blank line, the body.
    http::Response r;
    auto end = out.find("\r\n\r\n");
    size_t skip = 4;
    if (end == std::string::npos) {
      end = out.find("\n\n");
      skip = 2;
    }
    if (end == std::string::npos) end = out.size(), skip = 0;
    std::string head = out.substr(0, end);
    r.body = out.substr(std::min(out.size(), end + skip));
    r.content_type = "";
    size_t pos = 0;
    while (pos < head.size()) {
      auto nl = head.find('\n', pos);
      std::string line = head.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? head.size() : nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon), value = line.substr(colon + 1);
      while (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (name == "Status") r.status = std::stoi(value);
      else if (name == "Content-Type") r.content_type = value;
      else r.headers.push_back({name, value});
    }
    return r;
  }

  // Runs argv with exactly `env`, `input` on stdin (written from a thread
  // of its own, so a large answer cannot block it), stdout into `out`.
  static bool cgi(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& input,
                  std::string& out) {
    int in[2], o[2];
    if (pipe(in) != 0) return false;
    if (pipe(o) != 0) return false;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(o[1], 1);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      close(in[0]), close(in[1]), close(o[0]), close(o[1]);
      std::vector<char*> a, e;
      for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      for (auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
      e.push_back(nullptr);
      execvpe(a[0], a.data(), e.data());
      _exit(127);
    }
    close(in[0]);
    close(o[1]);
    std::thread writer([&] {
      size_t done = 0;
      while (done < input.size()) {
        ssize_t n = write(in[1], input.data() + done, input.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      close(in[1]);
    });
    char buf[65536];
    ssize_t n;
    while ((n = read(o[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(o[0]);
    writer.join();
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  std::string root_, user_, password_;
  http::Server server_;
  bool ok_ = false;
  std::mutex mu_;
  std::vector<std::string> auth_seen_;
  int requests_ = 0;
};

}  // namespace ads::test
