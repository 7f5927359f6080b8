// Every network connection libgit2 makes in this process (http, https —
// TLS is layered on it —, ssh, git://) is opened here, through a stream
// registered with git_stream_register: the host name is checked against the
// source policy, the name is resolved once, every address it resolved to is
// checked (core/source_policy.h: check_address), and the socket connects to
// those checked addresses only. So a DNS answer that changes between a check
// and the connection (rebinding) cannot steer a fetch elsewhere, and a
// redirect or a second connection is checked like the first.
//
// A fetch holds a ConnectScope on its thread while libgit2 works (libgit2
// runs a clone's transport on the calling thread); a connection made with no
// scope on its thread is refused.
#pragma once

#include <string>

#include "core/source_policy.h"

namespace ads {

class ConnectScope {
 public:
  explicit ConnectScope(const SourcePolicy& policy);
  ~ConnectScope();
  ConnectScope(const ConnectScope&) = delete;
  ConnectScope& operator=(const ConnectScope&) = delete;

  // The host of the last connection made in this scope ("" : none yet).
  // Credentials are chosen by it (never by the URL a server redirected to).
  const std::string& connected_host() const { return connected_host_; }
  // Why the last connection was refused by the policy ("" : none was).
  const std::string& refused() const { return refused_; }

  // For the stream (git_connect.cpp).
  const SourcePolicy& policy() const { return policy_; }
  void set_connected(const std::string& host) { connected_host_ = host; }
  void set_refused(const std::string& why) { refused_ = why; }
  static ConnectScope* current();

 private:
  const SourcePolicy& policy_;
  ConnectScope* previous_;
  std::string connected_host_, refused_;
};

// Initializes libgit2 for the life of the process and registers the stream
// (once; safe to call often).
void install_git_connect();

}  // namespace ads
