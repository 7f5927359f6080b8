#include "cli/exec.h"

namespace ads::cli {

int run_exec(const ApiClient& api, const std::string& id, const std::vector<std::string>& command, int timeout_s,
             std::ostream& out, std::ostream& err) {
  nlohmann::json body = {{"command", command}, {"timeout_s", timeout_s}};
  // the command may run its whole timeout, and the kill takes up to 5 s more
  auto r = api.call("POST", "/api/v1/deployments/" + id + "/exec", &body, (timeout_s + 30) * 1000L);
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != 200) return reply_error(*r);
  out << r->body.value("stdout", "");
  err << r->body.value("stderr", "");
  if (r->body.value("truncated", false)) err << "ads: the output was cut (1 MiB per stream is kept)\n";
  if (r->body.value("timed_out", false)) err << "ads: the command was stopped after " << timeout_s << " s\n";
  int code = r->body.value("exit_code", 1);
  return code < 0 || code > 255 ? 1 : code;
}

}  // namespace ads::cli
