// Placement of a new machine on a member of a cluster (LXD cluster), by ADS's
// own rule: the online member with the most memory available that still fits
// the machine. Pure functions; the LXD provider gathers the figures.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ads {

struct MemberLoad {
  std::string name;
  std::string status;        // the platform's word; only "Online" takes machines
  uint64_t free_mb = 0;      // host memory not in use now (total - used)
  uint64_t reserved_mb = 0;  // memory limits of the machines already on it
};

// free_mb - reserved_mb, 0 when reserved exceeds free. A machine created a
// moment ago uses almost nothing yet, so host "free" alone would send every
// new machine to the same member; its limit counts as taken from the start.
uint64_t available_mb(const MemberLoad& m);

// The member for a machine needing `need_mb` (0: no stated need; any online
// member with memory available fits). Among the online members whose
// available memory is >= need_mb, the one with the most; ties go to the
// first name in alphabetical order, so the choice is the same for the same
// figures. Errors ("unavailable"): no members, no online member (each
// member's status named), or none with enough memory (each member's
// available memory named).
Result<std::string> pick_member(const std::vector<MemberLoad>& members, uint64_t need_mb);

// Adds to each member's reserved_mb the memory promised to machines this
// process is placing there but the platform does not list yet (`pending`:
// member name -> MB), so that two placements at the same moment see each
// other. Members not in `pending` are unchanged.
void add_pending(std::vector<MemberLoad>& members, const std::map<std::string, uint64_t>& pending);

// MiB for an LXD memory limit ("limits.memory"): bytes without a unit,
// decimal units kB MB GB TB PB EB (powers of 1000), binary units KiB MiB GiB
// TiB PiB EiB (powers of 1024), or a percentage of `total_mb` ("50%").
// Rounded up. nullopt for anything else.
std::optional<uint64_t> parse_lxd_memory_mb(std::string_view limit, uint64_t total_mb);

}  // namespace ads
