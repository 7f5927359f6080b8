#include "cli/accounts.h"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/table.h"

namespace ads::cli {
using nlohmann::json;

Result<int64_t> parse_ttl(const std::string& s) {
  const Error bad = Error::invalid(
      "ttl", "must be a number of seconds, or a number with s, m, h or d (e.g. 30d); got \"" + s.substr(0, 32) + "\"");
  if (s.empty() || s.size() > 12) return bad;
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits + 1 < s.size()) return bad;
  int64_t n = std::stoll(s.substr(0, digits));
  int64_t unit = 1;
  if (digits < s.size()) {
    switch (s[digits]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return bad;
    }
  }
  if (n > 100LL * 365 * 86400 / unit) return Error::invalid("ttl", "must be at most 100 years");
  return n * unit;
}

namespace {

// One line from `in`, without echo when it is the terminal.
Result<std::string> read_password(std::istream& in) {
  bool tty = &in == &std::cin && ::isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << "password: " << std::flush;
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string pw;
  bool got = static_cast<bool>(std::getline(in, pw));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!got || pw.empty()) return Error::invalid("password", "no password on standard input");
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  return pw;
}

void print_users(const json& body) {
  Table t({"NAME", "ROLE", "PASSWORD", "STATE", "SIGN-IN", "CREATED"});
  for (auto& u : body["users"])
    t.add({u.value("name", ""), u.value("role", ""), u.value("password", false) ? "yes" : "no",
           u.value("disabled", false) ? "disabled" : "enabled", u.value("oidc", false) ? "openid" : "-",
           u.value("created_at", "")});
  std::cout << t.str();
}

std::string or_dash(const json& v) { return v.is_string() ? v.get<std::string>() : "-"; }

void print_tokens(const json& body) {
  Table t({"TOKEN", "NAME", "KIND", "CREATED", "EXPIRES", "REVOKED"});
  for (auto& k : body["tokens"])
    t.add({k.value("id", ""), k.value("name", ""), k.value("session", false) ? "session" : "api",
           k.value("created_at", ""), or_dash(k["expires_at"]), or_dash(k["revoked_at"])});
  std::cout << t.str();
}

// Sends one request; prints the API's error and returns its exit code, or 0.
int send(const ApiClient& api, const std::string& method, const std::string& path, const json* body, long want,
         json& out) {
  auto r = api.call(method, path, body);
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != want) return reply_error(*r);
  out = r->body;
  return 0;
}

// Percent-encodes a path segment or query value.
std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

int run_users(const ApiClient& api, const AccountArgs& a, std::istream& in) {
  json out;
  if (a.users_list->parsed()) {
    if (int rc = send(api, "GET", "/api/v1/users", nullptr, 200, out)) return rc;
    print_users(out);
    return 0;
  }
  if (a.users_unbind->parsed()) {
    if (int rc = send(api, "POST", "/api/v1/users/" + escape(a.name) + "/unbind", nullptr, 200, out)) return rc;
    std::cout << "user " << a.name << " is bound to no OpenID identity; the next sign-in with its address binds it\n";
    return 0;
  }
  if (a.users_enable->parsed()) {
    if (int rc = send(api, "POST", "/api/v1/users/" + escape(a.name) + "/enable", nullptr, 200, out)) return rc;
    std::cout << "user " << a.name << " enabled (" << out.value("role", "") << ")\n";
    return 0;
  }
  if (a.users_disable->parsed()) {
    if (int rc = send(api, "POST", "/api/v1/users/" + escape(a.name) + "/disable", nullptr, 200, out)) return rc;
    std::cout << "user " << a.name << " disabled (" << out.value("revoked_tokens", 0) << " tokens revoked)\n";
    return 0;
  }
  json body = json::object();
  if (!a.role.empty()) body["role"] = a.role;
  if (a.password_stdin) {
    auto pw = read_password(in);
    if (!pw) return fail_with(pw.error(), kExitUsage);
    body["password"] = *pw;
  }
  if (a.users_add->parsed()) {
    body["name"] = a.name;
    if (int rc = send(api, "POST", "/api/v1/users", &body, 201, out)) return rc;
    std::cout << "user " << out.value("name", "") << " added (" << out.value("role", "") << ")\n";
    return 0;
  }
  if (body.empty()) return fail_with(Error::invalid("set", "give --role, --password-stdin or both"), kExitUsage);
  if (int rc = send(api, "PATCH", "/api/v1/users/" + escape(a.name), &body, 200, out)) return rc;
  std::cout << "user " << out.value("name", "") << " is " << out.value("role", "")
            << (out.value("password", false) ? ", with a password" : ", without a password") << "\n";
  return 0;
}

int run_tokens(const ApiClient& api, const AccountArgs& a) {
  json out;
  if (a.tokens_list->parsed()) {
    std::string path = "/api/v1/tokens" + (a.user.empty() ? "" : "?user=" + escape(a.user));
    if (int rc = send(api, "GET", path, nullptr, 200, out)) return rc;
    print_tokens(out);
    return 0;
  }
  if (a.tokens_revoke->parsed()) {
    if (int rc = send(api, "DELETE", "/api/v1/tokens/" + escape(a.token_id), nullptr, 200, out)) return rc;
    std::cout << "token " << out.value("id", "") << " (" << out.value("name", "") << ") revoked\n";
    return 0;
  }
  json body = {{"name", a.name}};
  if (!a.user.empty()) body["user"] = a.user;
  if (!a.ttl.empty()) {
    auto ttl = parse_ttl(a.ttl);
    if (!ttl) return fail_with(ttl.error(), kExitUsage);
    body["ttl_s"] = *ttl;
  }
  if (int rc = send(api, "POST", "/api/v1/tokens", &body, 201, out)) return rc;
  std::cerr << "token " << out.value("id", "") << " (" << out.value("name", "") << "), expires "
            << or_dash(out["expires_at"]) << "; its secret is shown once:\n";
  std::cout << out.value("secret", "") << "\n";
  return 0;
}

}  // namespace

void add_account_commands(CLI::App& app, AccountArgs& a) {
  a.users = app.add_subcommand("users", "list and manage users (admins; anyone may set their own password)");
  a.users->require_subcommand(1);
  a.users_list = a.users->add_subcommand("list", "list users");
  a.users_add = a.users->add_subcommand("add", "add a user");
  a.users_add->add_option("name", a.name, "user name")->required();
  a.users_add->add_option("--role", a.role, "admin, deployer or viewer")->required();
  a.users_add->add_flag("--password-stdin", a.password_stdin, "read a password (12+ characters) from standard input");
  a.users_set = a.users->add_subcommand("set", "change a user's role or password");
  a.users_set->add_option("name", a.name, "user name")->required();
  a.users_set->add_option("--role", a.role, "admin, deployer or viewer");
  a.users_set->add_flag("--password-stdin", a.password_stdin, "read the new password from standard input");
  a.users_disable = a.users->add_subcommand(
      "disable", "stop a user signing in (also through OpenID Connect): revoke its tokens, remove its password");
  a.users_disable->add_option("name", a.name, "user name")->required();
  a.users_enable = a.users->add_subcommand("enable", "let a disabled user sign in again");
  a.users_enable->add_option("name", a.name, "user name")->required();
  a.users_unbind = a.users->add_subcommand(
      "unbind", "forget the OpenID identity an account is bound to (its address went to someone else)");
  a.users_unbind->add_option("name", a.name, "user name")->required();

  a.tokens = app.add_subcommand("tokens", "list, create and revoke API tokens");
  a.tokens->require_subcommand(1);
  a.tokens_list = a.tokens->add_subcommand("list", "list tokens (yours, or --user's for admins)");
  a.tokens_list->add_option("--user", a.user, "whose tokens (admins)");
  a.tokens_create = a.tokens->add_subcommand("create", "create a token; its secret is printed once");
  a.tokens_create->add_option("name", a.name, "what the token is for")->required();
  a.tokens_create->add_option("--ttl", a.ttl, "lifetime: seconds, or e.g. 12h, 30d; 0 or none: never expires");
  a.tokens_create->add_option("--user", a.user, "for another user (admins)");
  a.tokens_revoke = a.tokens->add_subcommand("revoke", "revoke a token");
  a.tokens_revoke->add_option("id", a.token_id, "token id (see `ads tokens list`)")->required();
}

int run_account_commands(const ApiClient& api, const AccountArgs& a, std::istream& in) {
  if (a.users->parsed()) return run_users(api, a, in);
  if (a.tokens->parsed()) return run_tokens(api, a);
  return -1;
}

}  // namespace ads::cli
