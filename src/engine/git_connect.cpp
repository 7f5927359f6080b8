#include "engine/git_connect.h"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/names.h"
#include "core/text.h"

namespace ads {
namespace {
thread_local ConnectScope* t_scope = nullptr;

constexpr int kConnectTimeoutMs = 30000;
constexpr int kIdleTimeoutS = 120;  // a server that sends nothing for this long is given up

// libgit2 1.5's SSH transport takes the socket out of the stream it was given
// by reading it as libgit2's own git_socket_stream ({parent, host, port, s});
// this stream starts with the same members in the same order so that it does.
struct GuardedStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
};
static_assert(offsetof(GuardedStream, parent) == 0);
static_assert(offsetof(GuardedStream, s) == sizeof(git_stream) + 2 * sizeof(char*));

int fail(const std::string& msg) {
  git_error_set_str(GIT_ERROR_NET, msg.c_str());
  return -1;
}

int connect_with_timeout(int s, const sockaddr* addr, socklen_t len) {
  int flags = fcntl(s, F_GETFL, 0);
  if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
  int r = ::connect(s, addr, len);
  if (r != 0 && errno != EINPROGRESS) return -1;
  if (r != 0) {
    pollfd p{s, POLLOUT, 0};
    int n = ::poll(&p, 1, kConnectTimeoutMs);
    if (n != 1) {
      errno = n == 0 ? ETIMEDOUT : errno;
      return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
      errno = err ? err : errno;
      return -1;
    }
  }
  if (fcntl(s, F_SETFL, flags) != 0) return -1;  // blocking again, with time limits on each read and write
  timeval tv{kIdleTimeoutS, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return 0;
}

int guarded_connect(git_stream* stream) {
  auto* st = reinterpret_cast<GuardedStream*>(stream);
  ConnectScope* scope = ConnectScope::current();
  std::string host = st->host ? st->host : "";
  if (!scope) return fail("connection to " + printable(host) + " refused: no lab source policy is in force");
  auto refuse = [&](const Error& e) {
    scope->set_refused(e.message);
    return fail(e.message);
  };
  // The host name as the transport is about to use it (after any redirect).
  std::string name = host;
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  if (auto s = check_host(name, scope->policy()); !s) return refuse(s.error());

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* info = nullptr;
  if (int e = ::getaddrinfo(name.c_str(), st->port, &hints, &info); e != 0)
    return fail("cannot resolve " + printable(host) + ": " + gai_strerror(e));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(info, freeaddrinfo);
  // Every address first: one denied address refuses the host (a name that
  // answers both a public and a private address is not to be trusted).
  std::vector<const addrinfo*> checked;
  for (const addrinfo* p = info; p; p = p->ai_next) {
    IpAddress a;
    if (p->ai_family == AF_INET) {
      a.bytes[10] = a.bytes[11] = 0xff;
      std::memcpy(a.bytes.data() + 12, &reinterpret_cast<const sockaddr_in*>(p->ai_addr)->sin_addr, 4);
    } else if (p->ai_family == AF_INET6) {
      std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(p->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    if (auto s = check_address(name, a, scope->policy()); !s) return refuse(s.error());
    checked.push_back(p);
  }
  int last_errno = 0;
  for (const addrinfo* p : checked) {  // exactly the addresses checked above: no second lookup
    int s = ::socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
    if (s < 0) continue;
    if (connect_with_timeout(s, p->ai_addr, p->ai_addrlen) == 0) {
      st->s = s;
      scope->set_connected(name);
      return 0;
    }
    last_errno = errno;
    ::close(s);
  }
  return fail("cannot connect to " + printable(host) + (last_errno ? std::string(": ") + errno_text(last_errno) : ""));
}

ssize_t guarded_read(git_stream* stream, void* data, size_t len) {
  auto* st = reinterpret_cast<GuardedStream*>(stream);
  ssize_t n;
  do n = ::recv(st->s, data, len, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    fail(errno == EAGAIN || errno == EWOULDBLOCK
             ? "the repository server sent nothing for " + std::to_string(kIdleTimeoutS) + " s"
             : std::string("cannot read from the repository server: ") + errno_text(errno));
    return -1;
  }
  return n;
}

ssize_t guarded_write(git_stream* stream, const char* data, size_t len, int) {
  auto* st = reinterpret_cast<GuardedStream*>(stream);
  ssize_t n;
  do n = ::send(st->s, data, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    fail(std::string("cannot write to the repository server: ") + errno_text(errno));
    return -1;
  }
  return n;
}

int guarded_close(git_stream* stream) {
  auto* st = reinterpret_cast<GuardedStream*>(stream);
  if (st->s >= 0) ::close(st->s);
  st->s = -1;
  return 0;
}

void guarded_free(git_stream* stream) {
  auto* st = reinterpret_cast<GuardedStream*>(stream);
  if (st->s >= 0) ::close(st->s);
  std::free(st->host);
  std::free(st->port);
  std::free(st);
}

int guarded_new(git_stream** out, const char* host, const char* port) {
  auto* st = static_cast<GuardedStream*>(std::calloc(1, sizeof(GuardedStream)));
  if (!st) return -1;
  st->host = ::strdup(host ? host : "");
  st->port = ::strdup(port ? port : "");
  st->s = -1;
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.connect = guarded_connect;
  st->parent.read = guarded_read;
  st->parent.write = guarded_write;
  st->parent.close = guarded_close;
  st->parent.free = guarded_free;
  *out = &st->parent;
  return 0;
}
}  // namespace

ConnectScope::ConnectScope(const SourcePolicy& policy) : policy_(policy), previous_(t_scope) { t_scope = this; }
ConnectScope::~ConnectScope() { t_scope = previous_; }
ConnectScope* ConnectScope::current() { return t_scope; }

void install_git_connect() {
  static std::once_flag once;
  std::call_once(once, [] {
    // libgit2 forgets registrations when its last user calls
    // git_libgit2_shutdown; this one reference, never released, keeps it.
    git_libgit2_init();
    git_stream_registration reg{};
    reg.version = GIT_STREAM_VERSION;
    reg.init = guarded_new;
    reg.wrap = nullptr;
    git_stream_register(GIT_STREAM_STANDARD, &reg);
  });
}

}  // namespace ads
