#include "cli/images.h"

#include "cli/table.h"

namespace ads::cli {

int print_images(const nlohmann::json& answer, std::ostream& out) {
  Table t({"PROVIDER", "OS", "IMAGE", "STATE", "NOTE"});
  int rc = 0;
  std::vector<std::string> errors;
  for (const auto& p : answer.value("providers", nlohmann::json::array())) {
    std::string name = p.value("provider", "") + (p.value("default", false) ? " *" : "");
    if (p.contains("error")) {
      errors.push_back(name + ": cannot list its images: " + p["error"].value("message", ""));
      rc = kExitFailed;
      continue;
    }
    for (const auto& i : p.value("images", nlohmann::json::array()))
      t.add({name, i.value("os", ""), i.value("image", ""), i.value("state", ""), i.value("note", "")});
  }
  out << t.str();
  for (const auto& e : errors) out << Table::printable(e) << "\n";
  out << "(* the default provider; a lab asks for an OS key with its spec's os name, version and variant)\n";
  return rc;
}

int run_images(const ApiClient& api, std::ostream& out) {
  auto r = api.call("GET", "/api/v1/images");
  if (!r) return fail_with(r.error(), kExitUnreachable);
  if (r->status != 200) return reply_error(*r);
  return print_images(r->body, out);
}

}  // namespace ads::cli
