// The jobs this process is running and how long their leases last, as far
// as this process knows (never longer than the store's: a lease counts from
// before the call that took or renewed it). Only these jobs' leases are
// renewed (Store::renew_leases_of), and a job whose lease lapsed here is
// lost for good: the store may have given it to another worker or server,
// so its worker writes nothing more of it and winds down (the store writes
// of a job are fenced by held()). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ads {

class LeaseBook {
 public:
  // A job claimed with its lease lasting until `until_ms` (counted from
  // before the claim).
  void add(const std::string& job_id, const std::string& deployment_id, int64_t until_ms);
  // The job's worker is done with it (finished, failed or handed back).
  void remove(const std::string& job_id);
  bool has(const std::string& job_id) const;
  // The jobs whose leases have not lapsed at `now_ms` (those to renew);
  // a lapsed one is marked lost on the way.
  std::vector<std::string> live(int64_t now_ms);
  // Their leases were renewed until `until_ms` (taken before the call).
  void renewed(const std::vector<std::string>& job_ids, int64_t until_ms);
  // When the lease of the job running on `deployment_id` lapses (0: no job
  // of this process runs on it); a lost job's is in the past.
  int64_t expiry_of_deployment(const std::string& deployment_id) const;
  // Whether the job on `deployment_id` may still write at `now_ms`: its
  // lease holds. Once false, false for good (lost).
  bool held(const std::string& deployment_id, int64_t now_ms);

 private:
  struct Entry {
    std::string deployment_id;
    int64_t until_ms = 0;
    bool lost = false;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> jobs_;  // by job id
};

}  // namespace ads
