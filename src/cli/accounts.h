// `ads users` and `ads tokens`: accounts and API tokens, through the REST API.
//   ads users list | add NAME --role R [--password-stdin] | set NAME [--role R] [--password-stdin]
//           | disable NAME | enable NAME | unbind NAME
//   ads tokens list [--user NAME] | create NAME [--ttl 30d] [--user NAME] | revoke ID
// Passwords are read from standard input (never from the command line, where
// other users of the machine could read them); a token's secret is printed
// once, on standard output only.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <istream>
#include <string>

#include "cli/client.h"
#include "core/result.h"

namespace ads::cli {

struct AccountArgs {
  CLI::App* users = nullptr;
  CLI::App* users_list = nullptr;
  CLI::App* users_add = nullptr;
  CLI::App* users_set = nullptr;
  CLI::App* users_disable = nullptr;
  CLI::App* users_enable = nullptr;
  CLI::App* users_unbind = nullptr;
  CLI::App* tokens = nullptr;
  CLI::App* tokens_list = nullptr;
  CLI::App* tokens_create = nullptr;
  CLI::App* tokens_revoke = nullptr;
  std::string name, role, user, ttl, token_id;
  bool password_stdin = false;
};

// Adds the two verbs and their sub-verbs to `app`.
void add_account_commands(CLI::App& app, AccountArgs& a);
// Runs whichever was parsed; -1 if neither verb was.
int run_account_commands(const ApiClient& api, const AccountArgs& a, std::istream& in);

// "90" (seconds), "90s", "15m", "12h", "30d", "0" (never expires) -> seconds.
Result<int64_t> parse_ttl(const std::string& s);

}  // namespace ads::cli
