// Result<T>: a value or an Error. Returned across module borders instead of
// throwing (see ARCHITECTURE.md). Header-only, no I/O.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ads {

// What went wrong. `code` is a stable machine-readable word ("invalid",
// "not_found", "unavailable", "timeout", "failed", "conflict", "internal"),
// `field` names the offending input when there is one.
struct Error {
  std::string code;
  std::string message;
  std::string field;

  static Error invalid(std::string field, std::string message) {
    return {"invalid", std::move(message), std::move(field)};
  }
  static Error make(std::string code, std::string message) { return {std::move(code), std::move(message), {}}; }
  std::string to_string() const { return field.empty() ? message : field + ": " + message; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : err_(std::move(e)), ok_(false) {}
  static Status Ok() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

}  // namespace ads
