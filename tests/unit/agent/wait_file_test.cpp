// agent/wait_file.h: the warm machine's agent waits for ADS's mark on
// inotify; a file there already, made later, made in a directory made later
// (the 100 ms looks), and a stop while it waits.
#include "agent/wait_file.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/process.h"

namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(WaitForFile, AFileThereAlreadyEndsTheWaitAtOnce) {
  ads::test::TempDir tmp;
  std::ofstream(tmp.path / "claimed") << "";
  volatile std::sig_atomic_t stop = 0;
  EXPECT_TRUE(ads::agent::wait_for_file((tmp.path / "claimed").string(), &stop));
}

TEST(WaitForFile, AFileMadeLaterEndsTheWaitAndOtherFilesDoNot) {
  ads::test::TempDir tmp;
  volatile std::sig_atomic_t stop = 0;
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    EXPECT_TRUE(ads::agent::wait_for_file((tmp.path / "claimed").string(), &stop));
    done = true;
  });
  std::this_thread::sleep_for(200ms);
  std::ofstream(tmp.path / "agent.json") << "{}";  // another file: still waiting
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(done.load());
  std::ofstream(tmp.path / "claimed") << "";
  waiter.join();
  EXPECT_TRUE(done.load());
}

TEST(WaitForFile, ADirectoryMadeLaterIsLookedAt) {
  ads::test::TempDir tmp;
  const fs::path dir = tmp.path / "etc-ads-agent";
  volatile std::sig_atomic_t stop = 0;
  std::thread waiter([&] { EXPECT_TRUE(ads::agent::wait_for_file((dir / "claimed").string(), &stop)); });
  std::this_thread::sleep_for(150ms);
  fs::create_directories(dir);
  std::ofstream(dir / "claimed") << "";
  waiter.join();
}

TEST(WaitForFile, AStopEndsTheWaitWithoutTheFile) {
  ads::test::TempDir tmp;
  volatile std::sig_atomic_t stop = 0;
  std::atomic<bool> result{true};
  std::thread waiter([&] { result = ads::agent::wait_for_file((tmp.path / "claimed").string(), &stop); });
  std::this_thread::sleep_for(100ms);
  stop = 1;  // (the signal handler's flag; the wait looks at least every second)
  waiter.join();
  EXPECT_FALSE(result.load());
  EXPECT_FALSE(fs::exists(tmp.path / "claimed"));
}

}  // namespace
