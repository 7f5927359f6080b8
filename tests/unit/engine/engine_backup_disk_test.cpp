// Issue 16.3: a backup on a full disk. The archive is written under a
// temporary name, synced, checked and renamed into place, and its checksum is
// taken from the file read back: on a full disk (a real tmpfs of 1 MiB as
// backup_dir) the backup fails saying so and leaves no file and no record.
// Archives a crash left unrecorded are removed at the next start.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "agent/identity.h"
#include "core/text.h"
#include "engine/durable_file.h"
#include "engine/engine.h"
#include "http/server.h"
#include "http/tls_mbedtls.h"
#include "support/engine_wait.h"
#include "support/process.h"
#include "support/switch_provider.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSecret(64, 'c');

// A tmpfs of `size` mounted at `dir` for the test's life (lazily unmounted).
struct SmallDisk {
  fs::path dir;
  bool mounted = false;
  SmallDisk(const fs::path& d, const char* size) : dir(d) {
    fs::create_directories(dir);
    std::string opts = std::string("size=") + size + ",mode=0700";
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
  // Writes into `file` until the disk refuses more.
  void fill(const fs::path& file) {
    std::string chunk(4096, 'x');
    FILE* f = std::fopen(file.c_str(), "wb");
    if (!f) return;
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
};

// A real .tar.gz of one small file (about 170 bytes, as in the issue).
std::string small_archive(const fs::path& tmp) {
  fs::create_directories(tmp / "data");
  std::ofstream(tmp / "data" / "db.dump") << "rows";
  std::string log;
  EXPECT_EQ(ads::test::run({"tar", "-czf", (tmp / "b.tgz").string(), "-C", (tmp / "data").string(), "."}, &log), 0)
      << log;
  std::ifstream in(tmp / "b.tgz", std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

ads::Deployment running_lab(const std::string& id) {
  ads::Deployment d = ads::test::lab_record(id, ads::State::kRunning);
  d.address = "127.0.0.1";
  d.secret = kSecret;
  d.spec_json = json{{"path", "ads-lab.json"},
                     {"text", R"({"ads":2,"os":{"name":"debian","version":"12"},"actions":{"start":["true"]}})"}}
                    .dump();
  return d;
}

std::unique_ptr<ads::Engine> make_engine(ads::Store& store, const fs::path& dir, uint16_t agent_port) {
  std::map<std::string, std::unique_ptr<ads::Provider>> providers;
  providers["switch"] = std::make_unique<ads::test::SwitchProvider>(std::make_shared<ads::test::SwitchState>());
  auto opts = ads::test::engine_options(dir);
  opts.default_provider = "switch";
  opts.agent_port = agent_port;
  return std::make_unique<ads::Engine>(store, std::move(providers), opts);
}

TEST(EngineBackupDisk, ABackupOnAFullDiskFailsSayingSoAndLeavesNoFileAndNoRecord) {
  ads::test::TempDir tmp;
  std::string tgz = small_archive(tmp.path);
  ASSERT_GT(tgz.size(), 100u);
  ads::http::ServerOptions so;
  so.host = "127.0.0.1";
  auto id = ads::agent::agent_identity(kSecret);
  ASSERT_TRUE(id.ok());
  so.tls_cert_pem = id->cert_pem;
  so.tls_backend = ads::http::mbedtls_tls;
  so.tls_key_pem = id->key_pem;
  ads::http::Server agent(so);
  agent.route("GET", "/v1/backup", [&](ads::http::Request&) {
    ads::http::Response r;
    r.content_type = "application/gzip";
    r.body = tgz;
    return r;
  });
  ASSERT_TRUE(agent.start().ok());

  auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto store = std::move(st.value());
  ads::Deployment d = running_lab("01m88rqkev9cbfs1eqysk664m0");
  ASSERT_TRUE(store->create(d).ok());

  SmallDisk disk(tmp.path / "backups", "1M");
  ASSERT_TRUE(disk.mounted) << "cannot mount a tmpfs (the unit tests run as root): " << ads::errno_text(errno);
  fs::create_directories(disk.dir / d.id);
  disk.fill(disk.dir / "filler");

  auto e = make_engine(*store, tmp.path, agent.port());
  ASSERT_TRUE(e->start().ok());
  auto job = e->operate(d.id, "backup");
  ASSERT_TRUE(job.ok()) << job.error().message;
  ads::test::settle(*store, d.id);
  e->stop();

  auto jobs = store->jobs_of(d.id);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().state, "failed");
  EXPECT_NE(jobs->front().error.find("No space left on device"), std::string::npos) << jobs->front().error;
  auto backups = store->backups_of(d.id);
  ASSERT_TRUE(backups.ok());
  EXPECT_TRUE(backups->empty());
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(disk.dir / d.id, ec)) << "a file was left in " << (disk.dir / d.id);

  // room again: the same backup is recorded, with the checksum of the file
  fs::remove(disk.dir / "filler");
  ASSERT_TRUE(e->start().ok());
  job = e->operate(d.id, "backup");
  ASSERT_TRUE(job.ok()) << job.error().message;
  ads::test::settle(*store, d.id);
  e->stop();
  backups = store->backups_of(d.id);
  ASSERT_TRUE(backups.ok());
  ASSERT_EQ(backups->size(), 1u);
  auto digest = ads::digest_file(backups->front().path);
  ASSERT_TRUE(digest.ok()) << digest.error().message;
  EXPECT_EQ(backups->front().sha256, digest->sha256);
  EXPECT_EQ(backups->front().size_bytes, static_cast<int64_t>(tgz.size()));
  EXPECT_EQ(digest->size, static_cast<int64_t>(tgz.size()));
}

TEST(EngineBackupDisk, WriteFileDurablyOnAFullDiskLeavesTheOldFileAndNoTemporaryOne) {
  ads::test::TempDir tmp;
  SmallDisk disk(tmp.path / "disk", "64k");
  ASSERT_TRUE(disk.mounted) << ads::errno_text(errno);
  fs::path file = disk.dir / "a.tar.gz";
  ASSERT_TRUE(ads::write_file_durably(file.string(), "old").ok());
  // bigger than the disk: the write itself fails part way
  auto w = ads::write_file_durably(file.string(), std::string(256 * 1024, 'y'));
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("No space left on device"), std::string::npos) << w.error().message;
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "old");
  EXPECT_FALSE(fs::exists(file.string() + ".partial"));
  // a link planted at the temporary name is not followed
  fs::create_symlink(tmp.path / "elsewhere", file.string() + ".partial");
  ASSERT_TRUE(ads::write_file_durably(file.string(), "new").ok());
  EXPECT_FALSE(fs::exists(tmp.path / "elsewhere"));
  std::ifstream in2(file);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in2)), {}), "new");
}

TEST(EngineBackupDisk, ArchivesACrashLeftUnrecordedAreRemovedAtStart) {
  ads::test::TempDir tmp;
  auto st = ads::open_store("sqlite://" + (tmp.path / "ads.db").string());
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto store = std::move(st.value());
  ads::Deployment d = running_lab("01m88rqkev9cbfs1eqysk664m1");
  ads::Deployment busy = running_lab("01m88rqkev9cbfs1eqysk664m2");
  ASSERT_TRUE(store->create(d).ok());
  ASSERT_TRUE(store->create(busy).ok());
  fs::path dir = tmp.path / "backups" / d.id;
  fs::create_directories(dir);
  auto put = [](const fs::path& p) { std::ofstream(p) << "x"; };
  put(dir / "01m88rqkev9cbfs1eqysk664m3.tar.gz");          // recorded
  put(dir / "01m88rqkev9cbfs1eqysk664m4.tar.gz");          // renamed, never recorded
  put(dir / "01m88rqkev9cbfs1eqysk664m5.tar.gz.partial");  // half written
  put(dir / "notes.txt");                                  // not an archive ADS writes
  ads::Backup b;
  b.id = "01m88rqkev9cbfs1eqysk664m3";
  b.deployment_id = d.id;
  b.path = (dir / "01m88rqkev9cbfs1eqysk664m3.tar.gz").string();
  b.created_ms = 1;
  ASSERT_TRUE(store->add_backup(b).ok());
  // a deployment with a job under way (its backup may be being written), and
  // a folder that names no deployment of this store: left alone
  fs::create_directories(tmp.path / "backups" / busy.id);
  put(tmp.path / "backups" / busy.id / "01m88rqkev9cbfs1eqysk664m6.tar.gz.partial");
  ads::Job j;
  j.id = "01m88rqkev9cbfs1eqysk664m7";
  j.deployment_id = busy.id;
  j.kind = "backup";
  j.state = "queued";
  j.created_ms = j.updated_ms = 1;
  ASSERT_TRUE(store->create_job(j).ok());
  ASSERT_TRUE(store->claim_job("other-server", 2, int64_t(1) << 60).ok());
  fs::create_directories(tmp.path / "backups" / "01m88rqkev9cbfs1eqysk664m8");
  put(tmp.path / "backups" / "01m88rqkev9cbfs1eqysk664m8" / "01m88rqkev9cbfs1eqysk664m9.tar.gz");

  auto e = make_engine(*store, tmp.path, 1);
  ASSERT_TRUE(e->start().ok());
  e->stop();
  EXPECT_TRUE(fs::exists(dir / "01m88rqkev9cbfs1eqysk664m3.tar.gz"));
  EXPECT_FALSE(fs::exists(dir / "01m88rqkev9cbfs1eqysk664m4.tar.gz"));
  EXPECT_FALSE(fs::exists(dir / "01m88rqkev9cbfs1eqysk664m5.tar.gz.partial"));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  EXPECT_TRUE(fs::exists(tmp.path / "backups" / busy.id / "01m88rqkev9cbfs1eqysk664m6.tar.gz.partial"));
  EXPECT_TRUE(fs::exists(tmp.path / "backups" / "01m88rqkev9cbfs1eqysk664m8" / "01m88rqkev9cbfs1eqysk664m9.tar.gz"));
  EXPECT_NE(ads::test::log_of(*store, d.id).find("unrecorded backup archive 01m88rqkev9cbfs1eqysk664m4.tar.gz"),
            std::string::npos)
      << ads::test::log_of(*store, d.id);
}

}  // namespace
