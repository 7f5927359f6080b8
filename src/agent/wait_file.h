// The agent of a warm machine (docs/operators/warm-machines.md) starts before
// it has a config, and waits for the mark ADS places once the config is
// complete (`ads-agent --wait-for PATH`): asleep on inotify, no polling.
#pragma once

#include <csignal>
#include <string>

namespace ads::agent {

// Returns true once `path` exists; false as soon as *stop is set (checked at
// least every second, and at once when a signal interrupts the wait).
// Watches the path's directory with inotify; where that cannot be watched
// (no such directory yet) it looks every 100 ms.
bool wait_for_file(const std::string& path, const volatile std::sig_atomic_t* stop);

}  // namespace ads::agent
