#include "cli/track.h"

namespace ads::cli {
using nlohmann::json;

void print_track(const json& t, const std::string& server, std::ostream& out) {
  std::string base = server;
  while (!base.empty() && base.back() == '/') base.pop_back();
  out << "tracks:   " << t.value("branch", "") << "  (a push releases it)\n"
      << "hook URL: " << base << t.value("hook_path", "") << "  (content type application/json, push events)\n";
  long long poll = t.value("poll_s", 0LL);
  out << "polls:    " << (poll > 0 ? "every " + std::to_string(poll) + " s" : std::string("no (webhooks only)"))
      << "\n";
  if (t.contains("pending_commit") && t["pending_commit"].is_string())
    out << "pending:  " << t["pending_commit"].get<std::string>() << "  (released when the job under way ends)\n";
  if (t.contains("secret") && t["secret"].is_string())
    out << "secret:   " << t["secret"].get<std::string>()
        << "\n          the hook's secret, shown only now: put it in the webhook's settings"
           " (`ads track ID BRANCH --new-secret` makes a new one)\n";
}

int run_track(const ApiClient& api, const std::string& server, const std::string& id, const std::string& branch,
              std::optional<long long> poll_s, bool new_secret, std::ostream& out) {
  json body = {{"branch", branch}};
  if (poll_s) body["poll_s"] = *poll_s;
  if (new_secret) body["new_secret"] = true;
  auto r = api.call("PUT", "/api/v1/deployments/" + id + "/track", &body);
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != 200) return reply_error(*r);
  print_track(r->body, server, out);
  return 0;
}

int run_untrack(const ApiClient& api, const std::string& id, std::ostream& out) {
  auto r = api.call("DELETE", "/api/v1/deployments/" + id + "/track");
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != 200) return reply_error(*r);
  out << "deployment " << id << " no longer tracks " << r->body.value("untracked", "") << "\n";
  return 0;
}

}  // namespace ads::cli
