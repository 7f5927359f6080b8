// Text with invalid UTF-8 (a lab's error, a command's output line, a request
// path in the audit log) is stored on every backend as valid UTF-8, each
// ill-formed byte as U+FFFD: PostgreSQL refuses such bytes, and a JSON answer
// built from them would throw.
#include <gtest/gtest.h>

#include "core/text.h"
#include "store/store.h"
#include "support/store_backends.h"

namespace {
const std::string kR = "\xEF\xBF\xBD";

class StoreUtf8Test : public ads::test::BackendTest {};

TEST_P(StoreUtf8Test, InvalidBytesAreStoredAsReplacementCharacters) {
  auto s = open();
  ASSERT_TRUE(s);
  ads::Deployment d;
  d.id = "01hzzzzzzzzzzzzzzzzzzzzzzz";
  d.name = "lab";
  d.source = "/srv/lab";
  d.provider = "lxd";
  d.owner = "admin";
  d.error = "bad \xff\xfe spec";
  ads::Job j;
  j.id = "01hzzzzzzzzzzzzzzzzzzzzzzy";
  j.deployment_id = d.id;
  j.kind = "deploy";
  j.error = "exit \xc0\xaf";
  ASSERT_TRUE(s->admit_job(j, {}, &d).ok());
  ads::LogLine l;
  l.stream = "stdout";
  l.text = "out \xed\xa0\x80 put";
  ASSERT_TRUE(s->append_log(d.id, l).ok());
  ads::AuditEntry a;
  a.user = "admin";
  a.action = "DELETE /api/v1/deployments/\xff";
  ASSERT_TRUE(s->append_audit(a).ok());

  auto got = s->get(d.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->error, "bad " + kR + kR + " spec");
  auto jobs = s->jobs_of(d.id);
  ASSERT_TRUE(jobs.ok() && jobs->size() == 1u);
  EXPECT_EQ((*jobs)[0].error, "exit " + kR + kR);
  auto lines = s->logs(d.id, 0, 10);
  ASSERT_TRUE(lines.ok() && lines->size() == 1u);
  EXPECT_EQ((*lines)[0].text, "out " + kR + kR + kR + " put");
  auto audit = s->audit(0, 10);
  ASSERT_TRUE(audit.ok() && !audit->empty());
  EXPECT_EQ(audit->back().action, "DELETE /api/v1/deployments/" + kR);
  // later writes of the record keep it valid too
  got->error = "again \xff";
  ASSERT_TRUE(s->update(*got).ok());
  EXPECT_EQ(s->get(d.id)->error, "again " + kR);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreUtf8Test, ads::test::kBackends, ads::test::backend_name);
}  // namespace
