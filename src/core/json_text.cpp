#include "core/json_text.h"

#include "core/text.h"

namespace ads {

void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  const size_t start = out.size();
  out += '"';
  size_t plain = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = utf8_sequence_length(s, i);
      if (n == 0) {  // not UTF-8 (rare): start again on the text valid_utf8 makes of it
        out.resize(start);
        append_json_string(out, valid_utf8(s));
        return;
      }
      i += n - 1;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.substr(plain, i - plain));
    plain = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xf];
    }
  }
  out.append(s.substr(plain));
  out += '"';
}

std::string& JsonObjectText::member(std::string_view key) {
  if (!first_) out_ += ',';
  first_ = false;
  append_json_string(out_, key);
  out_ += ':';
  return out_;
}

JsonObjectText& JsonObjectText::str(std::string_view key, std::string_view value) {
  append_json_string(member(key), value);
  return *this;
}

JsonObjectText& JsonObjectText::boolean(std::string_view key, bool value) {
  member(key) += value ? "true" : "false";
  return *this;
}

JsonObjectText& JsonObjectText::integer(std::string_view key, int64_t value) {
  member(key) += std::to_string(value);
  return *this;
}

JsonObjectText& JsonObjectText::null(std::string_view key) {
  member(key) += "null";
  return *this;
}

JsonObjectText& JsonObjectText::raw(std::string_view key, std::string_view json) {
  member(key) += json;
  return *this;
}

}  // namespace ads
