// The process environment, read through one function: ADS never changes its
// own environment (no setenv, putenv or unsetenv in src/), so getenv cannot
// race with a change of it, which is why concurrency-mt-unsafe flags getenv.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace ads {

// The value of the environment variable `name`, nullopt when it is not set.
inline std::optional<std::string> env_var(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): nothing in ADS changes the environment
  if (!v) return std::nullopt;
  return std::string(v);
}

}  // namespace ads
