#include "api/audit.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/text.h"

namespace ads {

int64_t audit_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

AuditNote::AuditNote(Store& store, AuditEntry e) : store_(store), e_(std::move(e)) {
  if (e_.ts_ms == 0) e_.ts_ms = audit_now_ms();
  e_.status = 0;
  e_.user = valid_utf8(e_.user);
  e_.action = valid_utf8(e_.action);
  e_.target = valid_utf8(e_.target);
  e_.remote = valid_utf8(e_.remote);
  e_.detail = valid_utf8(e_.detail);
}

void AuditNote::set_user(const std::string& user) { e_.user = valid_utf8(user); }

void AuditNote::describe(const std::string& target, const std::string& detail) {
  e_.target = valid_utf8(target);
  e_.detail = valid_utf8(detail);
}

Status AuditNote::begin() {
  if (seq_ != 0) return Status::Ok();
  AuditEntry e = e_;
  e.status = 0;
  auto seq = store_.append_audit(e);
  if (!seq) return audit_error(seq.error());
  seq_ = *seq;
  return Status::Ok();
}

Status AuditNote::finish(int status) {
  e_.status = status;
  if (seq_ != 0) return store_.finish_audit(seq_, status, e_.target, e_.detail);
  auto seq = store_.append_audit(e_);
  if (!seq) return seq.error();
  seq_ = *seq;
  return Status::Ok();
}

Error audit_error(const Error& e) {
  if (e.code == "audit_unavailable") return e;
  return Error::make("audit_unavailable", "the audit log cannot be written (" + e.message + "); nothing was changed");
}

http::Response audit_failed(const Error& e) {
  Error a = audit_error(e);
  http::Response r = http::Response::error(503, a.code, a.message);
  r.headers.push_back({"Retry-After", "5"});  // the store away: worth trying again soon
  return r;
}

}  // namespace ads
