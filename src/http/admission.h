// Which accepted connection the HTTP server serves now, which waits, and
// which it refuses: the bookkeeping behind ServerOptions' connection limits,
// with no sockets and no clock of its own (the server passes the time), so
// that every rule is tested on its own. Not thread-safe: the server holds
// its lock around every call.
//
// Rules, for a connection from address A:
//  - served at once (one thread each): at most `max_connections`, of which
//    the last `reserved` are reserved slots (see ServerOptions: a short head
//    deadline, requests the reserve filter lets in, one answer); at most
//    `per_address` served from A (0: no such limit);
//  - otherwise it waits in a queue: at most `max_queued` in all and
//    `max_queued_per_address` from A; a freed slot goes to the waiting
//    connection whose address has the fewest connections served (oldest
//    first among equals), skipping addresses at their limit: an address that
//    holds many slots and keeps many waiting does not get ahead of one that
//    holds none;
//  - otherwise it is refused: kTooManyFromAddress when A is over its share,
//    kBusy when the queue is full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ads::http {

struct AdmissionLimits {
  size_t max_connections = 256;
  size_t reserved = 0;
  size_t per_address = 0;  // 0: no limit
  size_t max_queued = 0;
  size_t max_queued_per_address = 0;
};

// One accepted connection.
struct Ticket {
  int fd = -1;
  std::string address;
  bool reserved = false;   // holds a reserved slot
  int64_t arrived_ms = 0;  // when it was accepted (queued ones wait from then)
};

class Admission {
 public:
  enum class Verdict { kServe, kQueued, kTooManyFromAddress, kBusy };

  explicit Admission(AdmissionLimits limits) : limits_(limits) {}

  // A new connection. kServe: `t` holds a slot now (t.reserved says which
  // kind); kQueued: it waits (see release, expire); otherwise it is refused
  // and nothing of it is kept.
  Verdict arrive(Ticket& t);
  // A served connection has ended: its slot is free. Returns the waiting
  // connection that takes it (see above), if any.
  std::optional<Ticket> release(const Ticket& t);
  // Takes out and returns the waiting connections that arrived at or before
  // `cutoff_ms` (they have waited too long).
  std::vector<Ticket> expire(int64_t cutoff_ms);
  // Takes out every waiting connection (the server stops).
  std::vector<Ticket> drain();
  // The arrival time of the oldest waiting connection, if any.
  std::optional<int64_t> oldest_waiting() const;

  size_t open() const { return open_; }
  size_t reserved_open() const { return reserved_open_; }
  size_t queued() const { return queue_.size(); }
  size_t open_from(const std::string& address) const;

 private:
  bool address_full(const std::string& address) const;
  // Gives `t` a free slot if there is one (normal first); false if none.
  bool take_slot(Ticket& t);
  void count(const std::string& address, std::unordered_map<std::string, size_t>& m, int delta);

  AdmissionLimits limits_;
  size_t open_ = 0;
  size_t reserved_open_ = 0;
  std::unordered_map<std::string, size_t> open_by_address_;
  std::unordered_map<std::string, size_t> queued_by_address_;
  std::deque<Ticket> queue_;
};

}  // namespace ads::http
