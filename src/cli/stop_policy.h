// How `ads serve` stops on SIGTERM/SIGINT (issue 16.7), and the two things
// that wait for it: the systemd unit (packaging/ads.service, TimeoutStopSec)
// and `ads service stop`. The three agree (tests/unit/cli/stop_policy_test.cpp
// reads the unit file):
//   - ads serve stops taking work and leaves the agents' actions under way at
//     once (they go on in the machines); each running job is handed back as
//     it stands, for the next start (or another server) to resume, deploy
//     again or roll back by its rules. Only a provider call under way is
//     finished first (seconds). It exits by kServeStopDeadlineS whatever is
//     left (the store holds every job's state; the next start takes it up).
//   - systemd and `ads service stop` wait kStopWaitS, then SIGKILL.
#pragma once

namespace ads::cli {

inline constexpr int kServeStopDeadlineS = 45;
inline constexpr int kStopWaitS = 60;
static_assert(kStopWaitS > kServeStopDeadlineS, "the waiters give ads serve its whole deadline");

}  // namespace ads::cli
