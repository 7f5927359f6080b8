// A plain-text table for the CLI's listings: each column as wide as its
// widest cell (the header included), two spaces between columns, the last
// column not padded. Cells are text from the server: control characters
// (terminal escapes) are shown as '?', and widths count UTF-8 characters,
// not bytes, so long names push their column wider instead of shifting the
// next ones.
#pragma once

#include <string>
#include <vector>

namespace ads::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header);
  // A row; missing cells are empty, extra ones are dropped.
  void add(std::vector<std::string> row);
  // The header and every row, one line each ending in '\n'.
  std::string str() const;

  // How many columns `s` takes on a terminal (UTF-8 characters).
  static size_t width(const std::string& s);
  // `s` with control characters replaced by '?'.
  static std::string printable(const std::string& s);

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

}  // namespace ads::cli
