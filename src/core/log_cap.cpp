#include "core/log_cap.h"

#include <string>

namespace ads {

bool LogCap::add(LogLine& line) {
  if (line.text.size() > limits_.line_bytes) {
    size_t keep = limits_.line_bytes;
    // not in the middle of a UTF-8 sequence
    while (keep > 0 && (static_cast<unsigned char>(line.text[keep]) & 0xC0) == 0x80) --keep;
    size_t dropped = line.text.size() - keep;
    line.text.resize(keep);
    line.text += " [... " + std::to_string(dropped) + " bytes cut]";
  }
  if (head_used_ + cost(line) <= limits_.head_bytes && !holding_) {
    head_used_ += cost(line);
    written_ += cost(line);
    return true;
  }
  head_used_ = limits_.head_bytes;  // spent: from here on, a tail
  if (!holding_) {
    holding_ = true;
    first_held_ = line;
  }
  tail_used_ += cost(line);
  tail_.push_back(std::move(line));
  while (tail_used_ > limits_.tail_bytes && !tail_.empty()) {
    tail_used_ -= cost(tail_.front());
    cut_bytes_ += static_cast<int64_t>(tail_.front().text.size());
    cut_lines_ += 1;
    tail_.pop_front();
  }
  return false;
}

std::vector<LogLine> LogCap::drain() {
  std::vector<LogLine> out;
  const size_t budget = limits_.head_bytes + kTails * limits_.tail_bytes;
  while (!tail_.empty() && written_ + tail_used_ > budget) {
    tail_used_ -= cost(tail_.front());
    cut_bytes_ += static_cast<int64_t>(tail_.front().text.size());
    cut_lines_ += 1;
    tail_.pop_front();
  }
  written_ += tail_used_;
  if (cut_lines_ > 0) {
    LogLine mark;
    mark.ts_ms = first_held_.ts_ms;
    mark.step = first_held_.step;
    mark.stream = "ads";
    mark.text = "[" + std::to_string(cut_lines_) + " lines (" + std::to_string(cut_bytes_) +
                " bytes) of output cut here: a job's log keeps its first " + std::to_string(limits_.head_bytes / 1024) +
                " KiB and the last " + std::to_string(limits_.tail_bytes / 1024) + " KiB of what follows]";
    out.push_back(std::move(mark));
  }
  for (auto& l : tail_) out.push_back(std::move(l));
  total_cut_lines_ += cut_lines_;
  total_cut_bytes_ += cut_bytes_;
  tail_.clear();
  tail_used_ = 0;
  cut_lines_ = cut_bytes_ = 0;
  holding_ = false;
  return out;
}

}  // namespace ads
