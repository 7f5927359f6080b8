#include "core/auth.h"

namespace ads {

std::string to_string(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kDeployer:
      return "deployer";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> role_from_string(const std::string& s) {
  if (s == "viewer") return Role::kViewer;
  if (s == "deployer") return Role::kDeployer;
  if (s == "admin") return Role::kAdmin;
  return std::nullopt;
}

}  // namespace ads
