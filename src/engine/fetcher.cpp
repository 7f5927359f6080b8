#include "engine/fetcher.h"

#include <git2.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "core/names.h"
#include "engine/git_connect.h"

namespace ads {
namespace fs = std::filesystem;

namespace {
struct Git {
  Git() { git_libgit2_init(); }
  ~Git() { git_libgit2_shutdown(); }
};

std::string last_git_error() {
  const git_error* e = git_error_last();
  return printable(e && e->message ? e->message : "unknown libgit2 error");
}

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const {
    if (p) F(p);
  }
};
using RepoPtr = std::unique_ptr<git_repository, Free<git_repository, git_repository_free>>;
using ObjPtr = std::unique_ptr<git_object, Free<git_object, git_object_free>>;
using TreePtr = std::unique_ptr<git_tree, Free<git_tree, git_tree_free>>;
using OdbPtr = std::unique_ptr<git_odb, Free<git_odb, git_odb_free>>;

std::string mib(uint64_t bytes) {
  if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

struct FetchCtx {
  const std::function<void(const std::string&)>* progress = nullptr;
  const SourceSettings* settings = nullptr;
  const ConnectScope* scope = nullptr;
  unsigned last_pct = 101;
  bool over_fetch = false;
  std::string auth_error;       // why credentials were not given
  std::set<std::string> asked;  // hosts whose credentials were given once already
};

int on_transfer(const git_indexer_progress* s, void* payload) {
  auto* ctx = static_cast<FetchCtx*>(payload);
  if (s->received_bytes > ctx->settings->max_fetch_bytes) {
    ctx->over_fetch = true;
    return -1;  // stops the transfer here
  }
  if (!ctx->progress || !*ctx->progress || s->total_objects == 0) return 0;
  unsigned pct = static_cast<unsigned>(100.0 * s->received_objects / s->total_objects);
  if (pct / 25 != ctx->last_pct / 25 || ctx->last_pct == 101) {
    ctx->last_pct = pct;
    (*ctx->progress)("received " + std::to_string(s->received_objects) + "/" + std::to_string(s->total_objects) +
                     " objects (" + std::to_string(pct) + "%)");
  }
  return 0;
}

// A secret from a file the operator named (a password, a token, a
// passphrase): its first line, at most 4 KiB.
std::optional<std::string> read_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string s(4096, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(in.gcount()));
  auto nl = s.find_first_of("\r\n");
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

int on_credentials(git_credential** out, const char* /*url*/, const char* username_from_url, unsigned int allowed,
                   void* payload) {
  auto* ctx = static_cast<FetchCtx*>(payload);
  // By the host this connection reached, never by the URL libgit2 started from.
  const std::string host = ctx->scope->connected_host();
  auto it = ctx->settings->credentials.find(host);
  if (it == ctx->settings->credentials.end()) {
    ctx->auth_error =
        printable(host) + " asks for credentials and this server has none for it (sources.git_credentials)";
    return GIT_EAUTH;
  }
  const GitCredential& c = it->second;
  std::string user = c.username;
  if (user.empty() && username_from_url) user = username_from_url;
  if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, user.empty() ? "git" : user.c_str());
  if (!ctx->asked.insert(host).second) {  // libgit2 asks again after a refusal: do not loop
    ctx->auth_error = printable(host) + " refused the credentials this server has for it (sources.git_credentials)";
    return GIT_EAUTH;
  }
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !c.ssh_key.empty()) {
    std::string pass;
    if (!c.passphrase_file.empty()) {
      auto p = read_secret(c.passphrase_file);
      if (!p) {
        ctx->auth_error = "cannot read the passphrase file configured for " + printable(host);
        return GIT_EAUTH;
      }
      pass = *p;
    }
    return git_credential_ssh_key_new(out, user.empty() ? "git" : user.c_str(),
                                      c.ssh_public_key.empty() ? nullptr : c.ssh_public_key.c_str(), c.ssh_key.c_str(),
                                      pass.c_str());
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !c.password_file.empty()) {
    auto p = read_secret(c.password_file);
    if (!p) {
      ctx->auth_error = "cannot read the password file configured for " + printable(host);
      return GIT_EAUTH;
    }
    return git_credential_userpass_plaintext_new(out, user.c_str(), p->c_str());
  }
  ctx->auth_error = printable(host) + " asks for a kind of credentials this server has not configured for it";
  return GIT_EAUTH;
}

// ssh: a host listed in sources.ssh_host_keys must show that key; others
// are checked by libgit2 against the server user's ~/.ssh/known_hosts.
int on_certificate(git_cert* cert, int /*valid*/, const char* /*host*/, void* payload) {
  auto* ctx = static_cast<FetchCtx*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return GIT_PASSTHROUGH;
  const std::string host = ctx->scope->connected_host();
  auto it = ctx->settings->ssh_host_keys.find(host);
  if (it == ctx->settings->ssh_host_keys.end()) return GIT_PASSTHROUGH;
  auto* hk = reinterpret_cast<git_cert_hostkey*>(cert);
  if (!(hk->type & GIT_CERT_SSH_SHA256)) {
    ctx->auth_error = "no SHA-256 fingerprint of " + printable(host) + "'s key to compare";
    return GIT_ECERTIFICATE;
  }
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string fp = "SHA256:";
  for (size_t i = 0; i < 32; i += 3) {  // base64 without padding, as ssh-keygen prints it
    uint32_t n = static_cast<uint32_t>(hk->hash_sha256[i]) << 16;
    if (i + 1 < 32) n |= static_cast<uint32_t>(hk->hash_sha256[i + 1]) << 8;
    if (i + 2 < 32) n |= hk->hash_sha256[i + 2];
    fp += b64[(n >> 18) & 63];
    fp += b64[(n >> 12) & 63];
    if (i + 1 < 32) fp += b64[(n >> 6) & 63];
    if (i + 2 < 32) fp += b64[n & 63];
  }
  if (fp == it->second) return 0;
  ctx->auth_error = printable(host) + "'s ssh host key (" + fp + ") is not the one configured in sources.ssh_host_keys";
  return GIT_ECERTIFICATE;
}

bool is_plain_dir(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  if (fs::exists(fs::path(path) / ".git", ec)) return false;
  if (fs::exists(fs::path(path) / "HEAD", ec) && fs::exists(fs::path(path) / "objects", ec)) return false;  // bare
  return true;
}

// What checking out `tree` would write, from the objects' headers.
struct Measure {
  git_odb* odb = nullptr;
  const SourceSettings* settings = nullptr;
  uint64_t bytes = 0, files = 0;
  std::string error;
};

int measure_entry(const char* root, const git_tree_entry* entry, void* payload) {
  auto* m = static_cast<Measure*>(payload);
  if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB) return 0;  // trees are walked into; submodules are not checked out
  size_t size = 0;
  git_object_t type;
  std::string path = std::string(root) + git_tree_entry_name(entry);
  if (git_odb_read_header(&size, &type, m->odb, git_tree_entry_id(entry)) != 0) {
    m->error = "cannot read the object of " + printable(path) + ": " + last_git_error();
    return -1;
  }
  m->bytes += size;
  if (++m->files > m->settings->max_checkout_files) {
    m->error = "the lab has more than " + std::to_string(m->settings->max_checkout_files) +
               " files (sources.max_checkout_files)";
    return -1;
  }
  if (m->bytes > m->settings->max_checkout_bytes) {
    m->error = "the lab is larger than the checkout limit of " + mib(m->settings->max_checkout_bytes) +
               " (sources.max_checkout_bytes; reached at " + printable(path) + ", " + std::to_string(size) + " bytes)";
    return -1;
  }
  return 0;
}

// Where a fetch or a branch listing goes: the source's URL, a local
// repository's resolved path, or a local plain directory (plain_dir); a
// source the policy refuses is an error.
struct SourceLocation {
  std::string url;
  bool plain_dir = false;
};
Result<SourceLocation> locate_source(const std::string& source, const SourceSettings& settings, bool owner_is_admin) {
  auto src = parse_source(source);
  if (!src) return src.error();
  if (!src->local) {
    if (auto st = check_remote(*src, settings.policy); !st) return st.error();
    return SourceLocation{source, false};
  }
  auto path = resolve_local_source(*src, owner_is_admin, settings);
  if (!path) return path.error();
  return SourceLocation{*path, is_plain_dir(*path)};
}

// One libgit2 network operation under the source policy: libgit2 up, ADS's
// transport installed, the scope that holds every connection to the policy,
// and the callbacks' context. failure() says why an operation failed: the
// policy's refusal first, then missing credentials, then libgit2's reason.
struct RemoteSession {
  explicit RemoteSession(const SourceSettings& settings) : scope(settings.policy) {
    install_git_connect();
    ctx.settings = &settings;
    ctx.scope = &scope;
  }
  Error failure(const std::string& what, const std::string& why) const {
    if (!scope.refused().empty()) return Error{"forbidden", what + ": " + printable(scope.refused()), "source"};
    if (!ctx.auth_error.empty()) return Error{"failed", what + ": " + ctx.auth_error, "source"};
    return Error{"failed", what + ": " + why, "source"};
  }
  Git git;  // first: libgit2 is up before anything else of the session
  ConnectScope scope;
  FetchCtx ctx;
};
}  // namespace

Result<FetchedLab> fetch_lab(const std::string& source, const std::string& ref, const std::string& dest_dir,
                             const SourceSettings& settings, bool owner_is_admin,
                             const std::function<void(const std::string&)>& progress) {
  auto where = locate_source(source, settings, owner_is_admin);
  if (!where) return where.error();
  if (where->plain_dir) {
    if (!ref.empty())
      return Error::invalid(
          "ref", "the source " + printable(source) + " is a plain directory, not a git repository; it has no refs");
    if (progress) progress("using the local directory " + printable(source));
    return FetchedLab{where->url, ""};
  }
  const std::string& url = where->url;
  RemoteSession session(settings);
  FetchCtx& ctx = session.ctx;
  ctx.progress = &progress;
  git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
  opts.fetch_opts.callbacks.transfer_progress = on_transfer;
  opts.fetch_opts.callbacks.credentials = on_credentials;
  opts.fetch_opts.callbacks.certificate_check = on_certificate;
  opts.fetch_opts.callbacks.payload = &ctx;
  opts.fetch_opts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
  opts.fetch_opts.proxy_opts.type = GIT_PROXY_NONE;
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
  opts.local = GIT_CLONE_NO_LOCAL;  // local repositories too go through the transport, and its limits
  git_repository* raw = nullptr;
  auto remove_dest = [&] {
    std::error_code ec;
    fs::remove_all(dest_dir, ec);
  };
  if (progress) progress("cloning " + printable(source));
  if (git_clone(&raw, url.c_str(), dest_dir.c_str(), &opts) != 0) {
    std::string why = last_git_error();
    if (raw) git_repository_free(raw);
    remove_dest();
    if (ctx.over_fetch)
      return Error{"too_large",
                   "cannot fetch " + printable(source) + ": it sends more than the fetch limit of " +
                       mib(settings.max_fetch_bytes) + " (sources.max_fetch_bytes)",
                   "source"};
    return session.failure("cannot fetch " + printable(source), why);
  }
  RepoPtr repo(raw);

  git_object* obj = nullptr;
  std::vector<std::string> candidates;
  if (ref.empty()) candidates = {"HEAD"};
  else candidates = {"refs/remotes/origin/" + ref, "refs/tags/" + ref, ref};
  for (const auto& c : candidates) {
    if (git_revparse_single(&obj, repo.get(), c.c_str()) == 0) break;
    obj = nullptr;
  }
  if (!obj) {
    return Error::invalid("ref", "no branch, tag or commit named \"" + printable(ref.empty() ? "HEAD" : ref) +
                                     "\" in " + printable(source));
  }
  ObjPtr target(obj);
  git_object* commit_raw = nullptr;
  if (git_object_peel(&commit_raw, target.get(), GIT_OBJECT_COMMIT) != 0)
    return Error::invalid("ref", "\"" + printable(ref) + "\" does not name a commit: " + last_git_error());
  ObjPtr commit(commit_raw);

  // Measure before writing anything.
  git_tree* tree_raw = nullptr;
  git_odb* odb_raw = nullptr;
  if (git_commit_tree(&tree_raw, reinterpret_cast<git_commit*>(commit.get())) != 0 ||
      git_repository_odb(&odb_raw, repo.get()) != 0) {
    if (tree_raw) git_tree_free(tree_raw);
    return Error::make("failed", "cannot read the commit's tree: " + last_git_error());
  }
  TreePtr tree(tree_raw);
  OdbPtr odb(odb_raw);
  Measure m;
  m.odb = odb.get();
  m.settings = &settings;
  if (git_tree_walk(tree.get(), GIT_TREEWALK_PRE, measure_entry, &m) != 0) {
    std::string why = m.error.empty() ? last_git_error() : m.error;
    repo.reset();
    remove_dest();
    return Error{m.error.empty() ? "failed" : "too_large", "cannot check out " + printable(source) + ": " + why,
                 "source"};
  }

  git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
  co.checkout_strategy = GIT_CHECKOUT_FORCE;
  co.disable_filters = 1;  // exactly the measured bytes (no CRLF or ident expansion)
  if (git_checkout_tree(repo.get(), commit.get(), &co) != 0)
    return Error::make("failed", "checkout of " + printable(ref) + " failed: " + last_git_error());
  if (git_repository_set_head_detached(repo.get(), git_object_id(commit.get())) != 0)
    return Error::make("failed", "cannot detach HEAD: " + last_git_error());
  char sha[GIT_OID_HEXSZ + 1] = {0};
  git_oid_tostr(sha, sizeof sha, git_object_id(commit.get()));
  if (progress)
    progress("checked out " + std::string(sha) + (ref.empty() ? "" : " (" + printable(ref) + ")") + ", " +
             std::to_string(m.files) + " files, " + std::to_string(m.bytes) + " bytes");
  return FetchedLab{dest_dir, sha};
}

Result<std::string> remote_branch_commit(const std::string& source, const std::string& branch,
                                         const SourceSettings& settings, bool owner_is_admin) {
  auto where = locate_source(source, settings, owner_is_admin);
  if (!where) return where.error();
  if (where->plain_dir)
    return Error::invalid("source", "the source " + printable(source) + " is a plain directory; it has no branches");
  const std::string& url = where->url;
  RemoteSession session(settings);
  git_remote* raw = nullptr;
  if (git_remote_create_anonymous(&raw, nullptr, url.c_str()) != 0)
    return Error{"failed", "cannot read " + printable(source) + ": " + last_git_error(), "source"};
  std::unique_ptr<git_remote, Free<git_remote, git_remote_free>> remote(raw);
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.credentials = on_credentials;
  cb.certificate_check = on_certificate;
  cb.payload = &session.ctx;
  git_remote_connect_options co = GIT_REMOTE_CONNECT_OPTIONS_INIT;
  co.callbacks = cb;
  co.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
  co.proxy_opts.type = GIT_PROXY_NONE;
  if (git_remote_connect_ext(remote.get(), GIT_DIRECTION_FETCH, &co) != 0) {
    return session.failure("cannot read " + printable(source), last_git_error());
  }
  const git_remote_head** heads = nullptr;
  size_t n = 0;
  if (git_remote_ls(&heads, &n, remote.get()) != 0)
    return Error{"failed", "cannot list the branches of " + printable(source) + ": " + last_git_error(), "source"};
  const std::string want = "refs/heads/" + branch;
  for (size_t i = 0; i < n; ++i) {
    if (want != heads[i]->name) continue;
    char hex[GIT_OID_HEXSZ + 1] = {0};
    git_oid_tostr(hex, sizeof hex, &heads[i]->oid);
    return std::string(hex);
  }
  return Error{"not_found", printable(source) + " has no branch " + printable(branch), "branch"};
}

}  // namespace ads
