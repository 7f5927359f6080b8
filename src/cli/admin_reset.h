// `ads admin reset`: the way back in when no admin can sign in any more (the
// last admin's token revoked, its password lost, the account disabled). For
// the machine's root only: it needs no token and talks to no server; it opens
// the store itself (from --config / --data-dir / --store, as `ads serve`
// would), makes the user (default "admin") an enabled admin with a new token
// that never expires, writes that token to DATA_DIR/admin.token (mode 0600,
// replaced atomically; printed too when standard output is a terminal) and
// records it in the audit log (user "root (local)", action "ads admin reset")
// before changing anything. A running `ads serve` on the same store sees the
// change at once.
#pragma once

#include <ostream>
#include <string>

#include "cli/config.h"

namespace ads::cli {

struct AdminResetOptions {
  std::string config_file;  // read over `cfg` first, like `ads serve --config`
  ServeConfig cfg;          // data_dir and store (flags)
  std::string user = "admin";
};

// Exit code: 0 done, 1 failed (not root, the store, the audit), 2 bad input.
int run_admin_reset(AdminResetOptions o, std::ostream& out, std::ostream& err);

}  // namespace ads::cli
