// Where a symbolic link inside a lab leads. A lab travels as a tree of
// files; a link in it may point at another place in the same tree (it
// arrives as a link), never out of it. Pure logic: the caller passes how to
// read a link, so the same rule serves the packer on the ADS host
// (engine/archive) and the agent that unpacks (agent/server).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace ads {

// Reads the link at `rel` (a path relative to the lab's root, '/'-separated);
// nullopt when `rel` is not a symbolic link (a file, a directory, or nothing).
using ReadLinkAt = std::function<std::optional<std::string>(const std::string& rel)>;

// Follows the link at `link_rel` (whose target is `target`) the way the
// kernel would, through any further links in the tree (at most 40), and
// answers whether it stays inside the tree. A dangling link inside the tree
// stays inside. Absolute targets and targets that climb above the root, at
// any hop, leave it.
bool link_stays_inside(const std::string& link_rel, const std::string& target, const ReadLinkAt& read_link);

}  // namespace ads
