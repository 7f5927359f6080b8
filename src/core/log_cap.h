// The cap on one job's log: a lab that prints without end must not fill the
// store. The first `head_bytes` of a job's output go to the log as they come;
// after that only the last `tail_bytes` are kept (held back, written when the
// output stops), and a line says how much was cut in between. Very long lines
// are shortened. Pure logic: no I/O (the engine writes what it is handed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "core/deployment.h"

namespace ads {

struct LogCapLimits {
  size_t head_bytes = 1u << 20;    // per job, of output written as it comes
  size_t tail_bytes = 256u << 10;  // per job, the end of what came after the head
  size_t line_bytes = 8192;        // a longer line is shortened to this (marked)
};

class LogCap {
 public:
  // What one line costs against the budgets besides its text (its row).
  static constexpr size_t kLineOverhead = 64;

  explicit LogCap(LogCapLimits limits = {}) : limits_(limits) {}

  // A line of output. Its text is shortened first when longer than
  // line_bytes (cut at a UTF-8 boundary, " [... N bytes cut]" appended).
  // True: write it now (within the head). False: it is held for the tail,
  // and the oldest held lines beyond tail_bytes are cut.
  bool add(LogLine& line);

  // A job's whole log (head and every tail drained) stays under
  // head_bytes + kTails x tail_bytes: output in many pieces (between the
  // engine's own lines) cannot multiply the tail without end.
  static constexpr size_t kTails = 4;

  // What is held: a line (stream "ads", at the first held line's time and
  // step) saying how many lines and bytes were cut, when any were, then the
  // tail, oldest first. The head stays spent: later lines are held again.
  std::vector<LogLine> drain();

  // Lines and bytes (of text) cut so far, over the whole job.
  int64_t cut_lines() const { return total_cut_lines_; }
  int64_t cut_bytes() const { return total_cut_bytes_; }

 private:
  static size_t cost(const LogLine& l) { return l.text.size() + kLineOverhead; }
  LogCapLimits limits_;
  size_t head_used_ = 0;
  size_t written_ = 0;  // head plus the tails drained
  std::deque<LogLine> tail_;
  size_t tail_used_ = 0;
  int64_t cut_lines_ = 0, cut_bytes_ = 0;  // since the last drain
  int64_t total_cut_lines_ = 0, total_cut_bytes_ = 0;
  LogLine first_held_;
  bool holding_ = false;
};

}  // namespace ads
