#include "engine/source_access.h"

#include <climits>
#include <cstdlib>
#include <memory>

#include "core/names.h"

namespace ads {
namespace {
std::optional<std::string> real_path(const std::string& p) {
  std::unique_ptr<char, void (*)(void*)> r(::realpath(p.c_str(), nullptr), std::free);
  if (!r) return std::nullopt;
  return std::string(r.get());
}

Error not_allowed(const SourceSettings& s) {
  if (s.policy.local_roots.empty())
    return Error{"forbidden",
                 "this server lets only admins deploy from a path on the server; deploy from a git URL, or ask an "
                 "admin to set sources.local_roots",
                 "source"};
  std::string roots;
  for (auto& r : s.policy.local_roots) roots += (roots.empty() ? "" : ", ") + printable(r);
  return Error{"forbidden",
               "a path on the server must be an existing folder inside this server's local roots (" + roots + ")",
               "source"};
}
}  // namespace

Result<std::string> resolve_local_source(const SourceRef& ref, bool admin, const SourceSettings& settings) {
  auto real = real_path(ref.path);
  if (admin) return real ? *real : ref.path;
  if (!real) return not_allowed(settings);
  for (auto& root : settings.policy.local_roots) {
    auto r = real_path(root);
    if (r && path_within(*r, *real)) return *real;
  }
  return not_allowed(settings);
}

bool owner_may_use_any_path(Store& store, const std::string& owner) {
  auto u = store.get_user_by_name(owner);
  if (!u) return u.error().code == "not_found";
  return u->role == Role::kAdmin;
}

Status check_source_access(const std::string& source, bool admin, const SourceSettings& settings) {
  auto ref = parse_source(source);
  if (!ref) return ref.error();
  if (!ref->local) return check_remote(*ref, settings.policy);
  if (admin) return Status::Ok();  // any path; a missing one fails when fetched, as it always did
  auto r = resolve_local_source(*ref, false, settings);
  if (!r) return r.error();
  return Status::Ok();
}

}  // namespace ads
