// Who may deploy from which source, with the server's settings
// ("sources" in the config; docs/operators/lab-sources.md). The rules are
// core/source_policy.h; this file adds what needs the machine: realpath for
// local paths, and the settings for fetching (limits, credentials).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/result.h"
#include "core/source_policy.h"
#include "store/store.h"

namespace ads {

// Credentials for one repository host, kept by the server: never in a
// source, a log or an answer. Secrets are read from files when a fetch needs
// them.
struct GitCredential {
  std::string username;         // https/http: the user name; ssh: the login ("git" if empty)
  std::string password_file;    // https/http basic auth: a file holding the password or token
  std::string ssh_key;          // ssh: the private key file
  std::string ssh_public_key;   // ssh: its public key file ("" : libssh2 derives it)
  std::string passphrase_file;  // ssh: the key's passphrase, if it has one
};

struct SourceSettings {
  SourcePolicy policy;
  // Bytes received while fetching (the packed objects) and bytes of files a
  // checkout may write, and how many files: a fetch or checkout past one is
  // stopped when it gets there and refused, and its folder removed.
  uint64_t max_fetch_bytes = 256ull << 20;
  uint64_t max_checkout_bytes = 512ull << 20;
  uint64_t max_checkout_files = 100000;
  // By host name (lower case), for https, http and ssh sources.
  std::map<std::string, GitCredential> credentials;
  // ssh: the SHA-256 fingerprint of each host's key ("SHA256:..." as
  // ssh-keygen -l prints it); an ssh host not listed is not connected to.
  std::map<std::string, std::string> ssh_host_keys;
};

// At submit: may a caller (admin or not) deploy from `source`? Parses it
// (credentials in it: "invalid"), checks a remote one's scheme and host
// (addresses are checked when connecting, see git_connect.h) and a local
// one's place: admins may use any path; others only an existing folder
// inside sources.local_roots after realpath, and every other case (outside,
// missing, a link leading out) gets the same "forbidden" answer, so that it
// tells nothing about the server's files.
Status check_source_access(const std::string& source, bool admin, const SourceSettings& settings);

// At fetch: the folder or repository a local source names, resolved with
// realpath (a path that does not exist is returned as given: the fetch then
// says so). `admin`: the deployment's owner may use any path; otherwise it
// must lie inside the local roots (the same "forbidden" as above).
Result<std::string> resolve_local_source(const SourceRef& ref, bool admin, const SourceSettings& settings);

// Whether a deployment owned by `owner` may be fetched from any local path
// (when it is fetched again, e.g. for a restore): its owner is an admin now,
// or has no user record (a deployment made through the engine directly, not
// through the API, as tests do; every API caller has one).
bool owner_may_use_any_path(Store& store, const std::string& owner);

}  // namespace ads
