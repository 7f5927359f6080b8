// Fetches a lab's source with libgit2: a git URL or local repository at a
// ref (branch, tag or commit), or a plain local directory (no ref).
#pragma once

#include <functional>
#include <string>

#include "core/result.h"

namespace ads {

struct FetchedLab {
  std::string dir;     // the lab's tree (a checkout, or the plain directory itself)
  std::string commit;  // resolved commit id; "" for a plain directory
};

// Clones `source` into `dest_dir` (must not exist) and checks out `ref`
// ("" = the remote's default branch). Errors: field "source" when it cannot
// be fetched, field "ref" when the ref does not exist.
Result<FetchedLab> fetch_lab(const std::string& source, const std::string& ref, const std::string& dest_dir,
                             const std::function<void(const std::string&)>& progress);

}  // namespace ads
