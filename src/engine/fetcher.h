// Fetches a lab's source with libgit2: a git URL or local repository at a
// ref (branch, tag or commit), or a plain local directory (no ref), within
// the server's source settings (engine/source_access.h).
#pragma once

#include <functional>
#include <string>

#include "core/result.h"
#include "engine/source_access.h"

namespace ads {

struct FetchedLab {
  std::string dir;     // the lab's tree (a checkout, or the plain directory itself)
  std::string commit;  // resolved commit id; "" for a plain directory
};

// Clones `source` into `dest_dir` (must not exist) and checks out `ref`
// ("" = the remote's default branch).
// - The source is checked again here (the settings may have changed since
//   it was accepted): a local path is resolved with realpath and, unless
//   `owner_is_admin`, must lie inside sources.local_roots; a remote one's
//   scheme and host must be allowed, and every connection libgit2 makes is
//   checked as it is made (engine/git_connect.h). Refusals: "forbidden".
// - Credentials come from settings.credentials by the host actually
//   connected to; redirects are not followed.
// - Bytes received past settings.max_fetch_bytes stop the transfer; before
//   anything is checked out, the commit's tree is measured from the object
//   headers (no file is read) and refused past max_checkout_bytes or
//   max_checkout_files. Checkout applies no filters, so it writes exactly
//   what was measured. Refusals: "too_large", and dest_dir is removed.
// Errors: field "source" when it cannot be fetched, field "ref" when the ref
// does not exist. Every message is printable() (core/names.h).
Result<FetchedLab> fetch_lab(const std::string& source, const std::string& ref, const std::string& dest_dir,
                             const SourceSettings& settings, bool owner_is_admin,
                             const std::function<void(const std::string&)>& progress);

// The commit a branch of `source` points at, by one ls-remote (libgit2
// git_remote_ls) under the same checks, policy and credentials as fetch_lab.
// "not_found" (field "branch") when the remote has no such branch.
Result<std::string> remote_branch_commit(const std::string& source, const std::string& branch,
                                         const SourceSettings& settings, bool owner_is_admin);

}  // namespace ads
