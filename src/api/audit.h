// The audit trail of one request: who did what to whom, with what answer.
// A change is recorded BEFORE it is made: begin() writes the entry (status 0,
// "no answer yet") and only when that write succeeds may the caller change
// anything; finish() then fills in the answer's status, and the target and
// detail as they were known at the end. A request that changed nothing (a
// refusal) is written once, by finish(). So a store that cannot take the
// audit makes the request fail (see audit_failed) instead of letting a change
// through unrecorded; if only finish() fails, the entry stays with status 0.
#pragma once

#include <cstdint>
#include <string>

#include "core/auth.h"
#include "core/result.h"
#include "http/server.h"
#include "store/store.h"

namespace ads {

class AuditNote {
 public:
  // `e` has who (user), what (action), from where (remote) and, if known, the target.
  AuditNote(Store& store, AuditEntry e);

  // Who is acting (once known: a sign-in learns it late).
  void set_user(const std::string& user);
  // What the change touches: the target (a user name, a deployment id) and
  // what happens to it ("role admin", "token 01.. for pat, expires ..."). Kept
  // for begin() and finish(); may be called again with more detail.
  void describe(const std::string& target, const std::string& detail);
  // Writes the entry before the change. Idempotent (the first call writes).
  // An error (audit_error()): nothing may be changed.
  Status begin();
  bool begun() const { return seq_ != 0; }
  // After the answer: completes the entry begin() wrote, or writes the whole
  // entry when begin() was not called. An error of a request that changed
  // nothing should turn its answer into audit_failed().
  Status finish(int status);
  const AuditEntry& entry() const { return e_; }

 private:
  Store& store_;
  AuditEntry e_;
  int64_t seq_ = 0;
};

// The error of a change refused because its audit entry cannot be written:
// code "audit_unavailable", "the audit log cannot be written (...); nothing was changed".
Error audit_error(const Error& e);
// 503 with audit_error(e) as the JSON error.
http::Response audit_failed(const Error& e);

int64_t audit_now_ms();

}  // namespace ads
