#include "cli/admin_reset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "agent/protocol.h"
#include "api/audit.h"
#include "api/auth.h"
#include "cli/client.h"
#include "core/text.h"
#include "store/store.h"

namespace ads::cli {
namespace {

// Writes `text` to `path` with mode 0600: a new file beside it, then a
// rename over it, so a reader never sees half a token and a symlink planted
// at `path` is replaced, not followed.
Status write_secret_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".new-" + agent::random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Error::make("failed", "cannot create " + tmp + ": " + errno_text(errno));
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return Error::make("failed", "cannot write " + path + ": " + errno_text(saved));
  }
  return Status::Ok();
}

}  // namespace

int run_admin_reset(AdminResetOptions o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Error& e, int code) {
    err << "ads: admin reset: " << e.to_string() << "\n";
    return code;
  };
  if (::geteuid() != 0)
    return fail(Error::make("forbidden",
                            "only root may reset an admin (it opens the store directly and writes "
                            "DATA_DIR/admin.token)"),
                kExitFailed);
  if (!o.config_file.empty()) {
    auto st = load_config_file(o.config_file, o.cfg);
    if (!st) return fail(st.error(), kExitUsage);
  }
  if (o.cfg.store.empty()) o.cfg.store = "sqlite://" + o.cfg.data_dir + "/ads.db";
  if (!agent::crypto_init()) return fail(Error::make("internal", "libsodium cannot initialise"), kExitFailed);
  ::umask(077);
  std::error_code ec;
  std::filesystem::create_directories(o.cfg.data_dir, ec);
  if (ec) return fail(Error::invalid("data_dir", "cannot create " + o.cfg.data_dir + ": " + ec.message()), kExitUsage);
  auto store = open_store(o.cfg.store, o.cfg.store_connections);
  if (!store) return fail(store.error(), kExitFailed);

  Auth auth(**store);
  AuditNote note(**store, AuditEntry{0, 0, "root (local)", "ads admin reset", o.user, "local", 0, ""});
  auto t = auth.reset_admin(o.user, &note);
  if (!t) {
    if (note.begun()) (void)note.finish(500);
    return fail(t.error(), t.error().code == "invalid" ? kExitUsage : kExitFailed);
  }
  if (auto st = note.finish(200); !st)
    err << "ads: admin reset: warning: the audit entry has no status: " << st.error().message << "\n";

  std::string file = o.cfg.data_dir + "/admin.token";
  auto st = write_secret_file(file, t->second + "\n");
  if (!st) {
    // the token exists but nobody has it: say so, and show it on a terminal at least
    err << "ads: admin reset: " << st.error().message << "\n";
    if (::isatty(STDOUT_FILENO)) out << t->second << "\n";
    return kExitFailed;
  }
  out << "ads: " << o.user << " is an enabled admin; its new token " << t->first.id << " is in " << file
      << " (mode 0600)";
  if (::isatty(STDOUT_FILENO)) out << " and, shown once: " << t->second;
  out << "\n";
  return 0;
}

}  // namespace ads::cli
