#include "agent/wait_file.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace ads::agent {

bool wait_for_file(const std::string& path, const volatile std::sig_atomic_t* stop) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  // the watch is set before the first look: a file made in between is seen
  // by the look, one made after it wakes the wait
  if (fd >= 0 && ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    ::close(fd);
    fd = -1;
  }
  bool found = false;
  while (!(stop && *stop)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      found = true;
      break;
    }
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) {
      char events[4096];
      while (::read(fd, events, sizeof events) > 0) {
      }
    }
  }
  if (fd >= 0) ::close(fd);
  return found;
}

}  // namespace ads::agent
