#include "engine/fetcher.h"

#include <git2.h>

#include <filesystem>
#include <memory>

namespace ads {
namespace fs = std::filesystem;

namespace {
struct Git {
  Git() { git_libgit2_init(); }
  ~Git() { git_libgit2_shutdown(); }
};

std::string last_git_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const {
    if (p) F(p);
  }
};
using RepoPtr = std::unique_ptr<git_repository, Free<git_repository, git_repository_free>>;
using ObjPtr = std::unique_ptr<git_object, Free<git_object, git_object_free>>;

struct ProgressCtx {
  const std::function<void(const std::string&)>* progress;
  unsigned last_pct = 101;
};

int on_transfer(const git_indexer_progress* s, void* payload) {
  auto* ctx = static_cast<ProgressCtx*>(payload);
  if (!ctx->progress || !*ctx->progress || s->total_objects == 0) return 0;
  unsigned pct = static_cast<unsigned>(100.0 * s->received_objects / s->total_objects);
  if (pct / 25 != ctx->last_pct / 25 || ctx->last_pct == 101) {
    ctx->last_pct = pct;
    (*ctx->progress)("received " + std::to_string(s->received_objects) + "/" +
                     std::to_string(s->total_objects) + " objects (" + std::to_string(pct) + "%)");
  }
  return 0;
}

bool is_plain_dir(const std::string& source) {
  std::error_code ec;
  if (source.find("://") != std::string::npos) return false;
  if (!fs::is_directory(source, ec)) return false;
  if (fs::exists(fs::path(source) / ".git", ec)) return false;
  if (fs::exists(fs::path(source) / "HEAD", ec) && fs::exists(fs::path(source) / "objects", ec)) return false;  // bare
  return true;
}
}  // namespace

Result<FetchedLab> fetch_lab(const std::string& source, const std::string& ref, const std::string& dest_dir,
                             const std::function<void(const std::string&)>& progress) {
  if (is_plain_dir(source)) {
    if (!ref.empty())
      return Error::invalid("ref", "the source " + source + " is a plain directory, not a git repository; it has no refs");
    if (progress) progress("using the local directory " + source);
    return FetchedLab{fs::absolute(source).string(), ""};
  }
  Git git;
  git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
  ProgressCtx pctx{&progress};
  opts.fetch_opts.callbacks.transfer_progress = on_transfer;
  opts.fetch_opts.callbacks.payload = &pctx;
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
  git_repository* raw = nullptr;
  if (progress) progress("cloning " + source);
  if (git_clone(&raw, source.c_str(), dest_dir.c_str(), &opts) != 0) {
    std::string why = last_git_error();
    std::error_code ec;
    fs::remove_all(dest_dir, ec);
    return Error{"failed", "cannot fetch " + source + ": " + why, "source"};
  }
  RepoPtr repo(raw);

  git_object* obj = nullptr;
  std::string tried;
  std::vector<std::string> candidates;
  if (ref.empty()) candidates = {"HEAD"};
  else candidates = {"refs/remotes/origin/" + ref, "refs/tags/" + ref, ref};
  for (const auto& c : candidates) {
    if (git_revparse_single(&obj, repo.get(), c.c_str()) == 0) break;
    obj = nullptr;
  }
  if (!obj) {
    return Error::invalid("ref", "no branch, tag or commit named \"" + (ref.empty() ? "HEAD" : ref) + "\" in " + source);
  }
  ObjPtr target(obj);
  git_object* commit_raw = nullptr;
  if (git_object_peel(&commit_raw, target.get(), GIT_OBJECT_COMMIT) != 0)
    return Error::invalid("ref", "\"" + ref + "\" does not name a commit: " + last_git_error());
  ObjPtr commit(commit_raw);

  git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
  co.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_checkout_tree(repo.get(), commit.get(), &co) != 0)
    return Error::make("failed", "checkout of " + ref + " failed: " + last_git_error());
  if (git_repository_set_head_detached(repo.get(), git_object_id(commit.get())) != 0)
    return Error::make("failed", "cannot detach HEAD: " + last_git_error());
  char sha[GIT_OID_HEXSZ + 1] = {0};
  git_oid_tostr(sha, sizeof sha, git_object_id(commit.get()));
  if (progress) progress("checked out " + std::string(sha) + (ref.empty() ? "" : " (" + ref + ")"));
  return FetchedLab{dest_dir, sha};
}

}  // namespace ads
