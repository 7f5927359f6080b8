// What a terminal may be for `ads shell`: its size and its name (TERM), as
// the API takes them from a client and the providers pass them on.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace ads {

inline constexpr int kMaxTerminalSide = 1000;  // columns or rows

// "invalid" (field "size") unless both are from 1 to kMaxTerminalSide.
inline Status check_terminal_size(int cols, int rows) {
  if (cols < 1 || rows < 1 || cols > kMaxTerminalSide || rows > kMaxTerminalSide)
    return Error::invalid("size", "columns and rows go from 1 to " + std::to_string(kMaxTerminalSide));
  return Status::Ok();
}

// A terminal's name as TERM takes it: 1 to 64 of A-Z a-z 0-9 . _ + -.
inline bool valid_term_name(std::string_view t) {
  return !t.empty() && t.size() <= 64 &&
         t.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") ==
             std::string_view::npos;
}

}  // namespace ads
