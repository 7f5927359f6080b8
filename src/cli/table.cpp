#include "cli/table.h"

#include <algorithm>

namespace ads::cli {

Table::Table(std::vector<std::string> header) {
  for (auto& h : header) h = printable(h);
  rows_.push_back(std::move(header));
}

void Table::add(std::vector<std::string> row) {
  row.resize(rows_.front().size());
  for (auto& c : row) c = printable(c);
  rows_.push_back(std::move(row));
}

size_t Table::width(const std::string& s) {
  // every byte but a UTF-8 continuation byte starts a character
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string Table::printable(const std::string& s) {
  std::string out = s;
  for (auto& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

std::string Table::str() const {
  const size_t n = rows_.front().size();
  std::vector<size_t> widths(n, 0);
  for (auto& row : rows_)
    for (size_t i = 0; i < n; ++i) widths[i] = std::max(widths[i], width(row[i]));
  std::string out;
  for (auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < n; ++i) {
      line += row[i];
      if (i + 1 < n) line += std::string(widths[i] - width(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace ads::cli
