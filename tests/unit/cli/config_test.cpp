// `ads serve` config files: every setting, and errors that name the bad key;
// the store as a URL or as an object, and the settings of several servers sharing one store.
#include "cli/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "support/process.h"

namespace {

class ConfigFile : public ::testing::Test {
 protected:
  ads::Status load(const std::string& text) {
    std::ofstream(tmp.path / "c.json") << text;
    return ads::cli::load_config_file((tmp.path / "c.json").string(), cfg);
  }
  ads::test::TempDir tmp;
  ads::cli::ServeConfig cfg;
};

TEST_F(ConfigFile, ReadsSettingsAndLimits) {
  ASSERT_TRUE(load(R"({"listen":"0.0.0.0:9000","workers":4,"keep_failed":true,"keep_backups":3,"deploy_attempts":1,
    "max_backup_mb":2048,"log_head_kb":64,"log_tail_kb":32,"retention_days":7,"cleanup_interval_s":5,
    "keep_releases":3, "keep_releases_running":true, "drain_ms":500, "git_min_poll_s":5,
    "limits":{"requests_per_second":5,"request_burst":50,"auth_failures_per_minute":3,"auth_failure_burst":4,
              "active_jobs_per_user":2,"shells":5,"shells_per_user":1}})")
                  .ok());
  EXPECT_EQ(cfg.listen, "0.0.0.0:9000");
  EXPECT_EQ(cfg.workers, 4);
  EXPECT_TRUE(cfg.keep_failed);
  EXPECT_EQ(cfg.keep_backups, 3);
  EXPECT_EQ(cfg.deploy_attempts, 1);
  EXPECT_EQ(cfg.max_backup_mb, 2048);
  EXPECT_EQ(cfg.log_head_kb, 64);
  EXPECT_EQ(cfg.log_tail_kb, 32);
  EXPECT_EQ(cfg.retention_days, 7);
  EXPECT_EQ(cfg.cleanup_interval_s, 5);
  EXPECT_EQ(cfg.keep_releases, 3);
  EXPECT_TRUE(cfg.keep_releases_running);
  EXPECT_EQ(cfg.drain_ms, 500);
  EXPECT_EQ(cfg.git_min_poll_s, 5);
  EXPECT_EQ(cfg.limits.requests_per_second, 5);
  EXPECT_EQ(cfg.limits.request_burst, 50);
  EXPECT_EQ(cfg.limits.auth_failures_per_minute, 3);
  EXPECT_EQ(cfg.limits.auth_failure_burst, 4);
  EXPECT_EQ(cfg.limits.active_jobs_per_user, 2);
  EXPECT_EQ(cfg.limits.shells, 5);
  EXPECT_EQ(cfg.limits.shells_per_user, 1);
}

TEST_F(ConfigFile, TheAnsibleControllersPrograms) {
  EXPECT_EQ(cfg.ansible_playbook, "/usr/bin/ansible-playbook");
  EXPECT_EQ(cfg.ansible_sandbox, "/usr/bin/bwrap");
  EXPECT_EQ(cfg.ssh_keygen, "/usr/bin/ssh-keygen");
  EXPECT_EQ(cfg.netcat, "/usr/bin/nc.openbsd");
  ASSERT_TRUE(load(R"({"ansible":{"playbook":"/opt/ansible/bin/ansible-playbook","sandbox":"/usr/local/bin/bwrap",
                       "ssh_keygen":"/opt/ssh/bin/ssh-keygen","netcat":"/usr/bin/nc.openbsd"}})")
                  .ok());
  EXPECT_EQ(cfg.ansible_playbook, "/opt/ansible/bin/ansible-playbook");
  EXPECT_EQ(cfg.ansible_sandbox, "/usr/local/bin/bwrap");
  EXPECT_EQ(cfg.ssh_keygen, "/opt/ssh/bin/ssh-keygen");
}

TEST_F(ConfigFile, DefaultsLimitEveryone) {
  ASSERT_TRUE(load("{}").ok());
  EXPECT_EQ(cfg.keep_backups, 0);     // every backup is kept unless asked
  EXPECT_EQ(cfg.deploy_attempts, 2);  // a deploy cut off by a stopped server runs once more
  EXPECT_EQ(cfg.max_backup_mb, 512);  // what an agent takes back for a restore
  EXPECT_EQ(cfg.log_head_kb, 1024);   // a job's log is capped by default...
  EXPECT_EQ(cfg.log_tail_kb, 256);
  EXPECT_EQ(cfg.retention_days, 30);  // ...and destroyed deployments' logs do not stay for ever
  EXPECT_EQ(cfg.keep_releases, 1);    // one release back can be rolled back to
  EXPECT_FALSE(cfg.keep_releases_running);
  EXPECT_GT(cfg.limits.requests_per_second, 0);
  EXPECT_GE(cfg.limits.request_burst, 1);
  EXPECT_GE(cfg.limits.active_jobs_per_user, 1);
}

// "http": the HTTP server's connection limits and deadlines (docs/operators/limits.md).
TEST_F(ConfigFile, HttpConnectionLimits) {
  ASSERT_TRUE(load("{}").ok());
  EXPECT_EQ(cfg.http.max_connections, 256u);
  EXPECT_EQ(cfg.http.reserved_connections, 32u);
  EXPECT_EQ(cfg.http.max_connections_per_address, 64u);
  EXPECT_EQ(cfg.http.head_timeout_ms, 10000);
  EXPECT_EQ(cfg.http.request_timeout_ms, 30000);
  EXPECT_EQ(cfg.http.max_body_bytes, 64u * 1024);
  ASSERT_TRUE(load(R"({"http":{"max_connections":100,"max_connections_per_address":0,"reserved_connections":10,
    "max_queued":50,"max_queued_per_address":5,"head_timeout_ms":2000,"request_timeout_ms":5000,
    "write_timeout_ms":7000,"reserved_head_timeout_ms":500,"queue_timeout_ms":3000,"read_timeout_s":4,
    "idle_threads":0,"idle_thread_ms":250}})")
                  .ok());
  EXPECT_EQ(cfg.http.max_connections, 100u);
  EXPECT_EQ(cfg.http.max_connections_per_address, 0u);
  EXPECT_EQ(cfg.http.reserved_connections, 10u);
  EXPECT_EQ(cfg.http.max_queued, 50u);
  EXPECT_EQ(cfg.http.max_queued_per_address, 5u);
  EXPECT_EQ(cfg.http.head_timeout_ms, 2000);
  EXPECT_EQ(cfg.http.request_timeout_ms, 5000);
  EXPECT_EQ(cfg.http.write_timeout_ms, 7000);
  EXPECT_EQ(cfg.http.reserved_head_timeout_ms, 500);
  EXPECT_EQ(cfg.http.queue_timeout_ms, 3000);
  EXPECT_EQ(cfg.http.read_timeout_s, 4);
  EXPECT_EQ(cfg.http.idle_threads, 0u);
  EXPECT_EQ(cfg.http.idle_thread_ms, 250);
}

TEST_F(ConfigFile, WarmMachinesPerOsKeyAndNoneByDefault) {
  ASSERT_TRUE(load("{}").ok());
  EXPECT_TRUE(cfg.warm.empty());
  ASSERT_TRUE(load(R"({"warm":{"debian-12":2,"debian-12-build":0,"ubuntu-22.04":64}})").ok());
  // 0 asks for none: not kept
  EXPECT_EQ(cfg.warm, (std::map<std::string, int>{{"debian-12", 2}, {"ubuntu-22.04", 64}}));
}

TEST_F(ConfigFile, BadSettingsNameTheirKey) {
  struct Case {
    const char* text;
    const char* field;
  };
  for (auto c : std::vector<Case>{
           {R"({"limits":5})", "limits"},
           {R"({"limits":{"requests_per_second":0}})", "limits.requests_per_second"},
           {R"({"limits":{"requests_per_second":"fast"}})", "limits.requests_per_second"},
           {R"({"limits":{"request_burst":-1}})", "limits.request_burst"},
           {R"({"limits":{"request_burst":0.5}})", "limits"},
           {R"({"limits":{"active_jobs_per_user":0}})", "limits.active_jobs_per_user"},
           {R"({"limits":{"active_jobs_per_user":1.5}})", "limits.active_jobs_per_user"},
           {R"({"limits":{"per_ip":1}})", "limits.per_ip"},
           {R"({"limits":{"shells":-1}})", "limits.shells"},
           {R"({"limits":{"shells_per_user":"4"}})", "limits.shells_per_user"},
           {R"({"workers":0})", "workers"},
           {R"({"keep_failed":"yes"})", "keep_failed"},
           {R"({"ansible":"/usr/bin/ansible-playbook"})", "ansible"},
           {R"({"ansible":{"playbook":"ansible-playbook"}})", "ansible.playbook"},
           {R"({"ansible":{"sandbox":""}})", "ansible.sandbox"},
           {R"({"ansible":{"ssh_keygen":5}})", "ansible.ssh_keygen"},
           {R"({"ansible":{"bwrap":"/usr/bin/bwrap"}})", "ansible.bwrap"},
           {R"({"ansible":{"netcat":"/usr/bin/nc -U /x"}})", "ansible.netcat"},
           {R"({"ansible":{"netcat":"/usr/bin/nc';id'"}})", "ansible.netcat"},
           {R"({"keep_backups":-1})", "keep_backups"},
           {R"({"keep_releases":-1})", "keep_releases"},
           {R"({"keep_releases":101})", "keep_releases"},
           {R"({"keep_releases_running":1})", "keep_releases_running"},
           {R"({"drain_ms":-5})", "drain_ms"},
           {R"({"warm":2})", "warm"},
           {R"({"warm":{"debian-12":-1}})", "warm.debian-12"},
           {R"({"warm":{"debian-12":65}})", "warm.debian-12"},
           {R"({"warm":{"debian-12":"2"}})", "warm.debian-12"},
           {R"({"warm":{"Debian 12":1}})", "warm"},
           {R"({"warm":{"":1}})", "warm"},
           {R"({"git_min_poll_s":0})", "git_min_poll_s"},
           {R"({"git_min_poll_s":"30s"})", "git_min_poll_s"},
           {R"({"drain_ms":"2s"})", "drain_ms"},
           {R"({"keep_backups":1.5})", "keep_backups"},
           {R"({"keep_backups":"3"})", "keep_backups"},
           {R"({"keep_backups":10001})", "keep_backups"},
           {R"({"max_backup_mb":0})", "max_backup_mb"},
           {R"({"max_backup_mb":"1g"})", "max_backup_mb"},
           {R"({"max_backup_mb":1048577})", "max_backup_mb"},
           {R"({"log_head_kb":0})", "log_head_kb"},
           {R"({"log_tail_kb":"1m"})", "log_tail_kb"},
           {R"({"log_tail_kb":1048577})", "log_tail_kb"},
           {R"({"retention_days":-1})", "retention_days"},
           {R"({"retention_days":36501})", "retention_days"},
           {R"({"cleanup_interval_s":0})", "cleanup_interval_s"},
           {R"({"cleanup_interval_s":1.5})", "cleanup_interval_s"},
           {R"({"deploy_attempts":0})", "deploy_attempts"},
           {R"({"deploy_attempts":11})", "deploy_attempts"},
           {R"({"deploy_attempts":"2"})", "deploy_attempts"},
           {R"({"http":[]})", "http"},
           {R"({"http":{"max_connections":0}})", "http.max_connections"},
           {R"({"http":{"max_connections":"many"}})", "http.max_connections"},
           {R"({"http":{"head_timeout_ms":10.5}})", "http.head_timeout_ms"},
           {R"({"http":{"head_timeout_ms":5}})", "http.head_timeout_ms"},
           {R"({"http":{"queue_timeout_ms":-1}})", "http.queue_timeout_ms"},
           {R"({"http":{"max_queued":-1}})", "http.max_queued"},
           {R"({"http":{"idle_threads":-1}})", "http.idle_threads"},
           {R"({"http":{"idle_thread_ms":0}})", "http.idle_thread_ms"},
           {R"({"http":{"max_connections":16}})", "http.reserved_connections"},
           {R"({"http":{"reserved_connections":256}})", "http.reserved_connections"},
           {R"({"http":{"slowloris":true}})", "http.slowloris"},
           {R"({"http":{"head_timeout_ms":20000,"request_timeout_ms":15000}})", "http.request_timeout_ms"},
           {R"({"listen":8080})", "listen"},
           {R"({"colour":"blue"})", "colour"},
           {R"([1,2])", "config"},
           {R"({not json)", "config"}}) {
    SCOPED_TRACE(c.text);
    auto st = load(c.text);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().field, c.field) << st.error().message;
    EXPECT_FALSE(st.error().message.empty());
  }
  EXPECT_EQ(ads::cli::load_config_file((tmp.path / "missing.json").string(), cfg).error().field, "config");
}

class ConfigTest : public ::testing::Test {
 protected:
  ads::Status load(const std::string& text) {
    std::string path = (tmp.path / "ads.json").string();
    std::ofstream(path) << text;
    return ads::cli::load_config_file(path, cfg);
  }
  std::string field_of(const std::string& text) {
    auto st = load(text);
    EXPECT_FALSE(st.ok()) << text;
    return st.ok() ? "" : st.error().field;
  }
  ads::test::TempDir tmp;
  ads::cli::ServeConfig cfg;
};

TEST_F(ConfigTest, StoreAsUrlOrObject) {
  EXPECT_EQ(cfg.store, "");  // SQLite in the data dir unless told
  ASSERT_TRUE(load(R"({"store":"postgresql://ads@127.0.0.1:5432/ads"})").ok());
  EXPECT_EQ(cfg.store, "postgresql://ads@127.0.0.1:5432/ads");
  ASSERT_TRUE(load(R"({"store":{"kind":"postgres","url":"postgresql://ads@127.0.0.1:5433/x"}})").ok());
  EXPECT_EQ(cfg.store, "postgresql://ads@127.0.0.1:5433/x");
  ASSERT_TRUE(load(R"({"store":{"kind":"sqlite","path":"/var/lib/ads/other.db"}})").ok());
  EXPECT_EQ(cfg.store, "sqlite:///var/lib/ads/other.db");
  EXPECT_EQ(cfg.store_connections, 0u);  // the store's default
  ASSERT_TRUE(load(R"({"store":{"kind":"postgres","url":"postgresql://ads@h/x","connections":12}})").ok());
  EXPECT_EQ(cfg.store_connections, 12u);
}

TEST_F(ConfigTest, BadStoreObjectsNameTheKey) {
  EXPECT_EQ(field_of(R"({"store":{"kind":"mysql","url":"x"}})"), "store.kind");
  EXPECT_EQ(field_of(R"({"store":{"url":"postgresql://a@b/c"}})"), "store.kind");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres"}})"), "store.url");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"http://x"}})"), "store.url");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite"}})"), "store.path");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite","path":"/x","password":"p"}})"), "store.password");
  EXPECT_EQ(field_of(R"({"store":42})"), "store");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"postgresql://a@b/c","connections":0}})"),
            "store.connections");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"postgresql://a@b/c","connections":65}})"),
            "store.connections");
  EXPECT_EQ(field_of(R"({"store":{"kind":"postgres","url":"postgresql://a@b/c","connections":"4"}})"),
            "store.connections");
  EXPECT_EQ(field_of(R"({"store":{"kind":"sqlite","path":"/x","connections":4}})"), "store.connections");
}

TEST_F(ConfigTest, ServerIdLeaseAndMetricsToken) {
  EXPECT_EQ(cfg.lease_ms, 30000);
  EXPECT_TRUE(cfg.metrics_need_token);
  ASSERT_TRUE(load(R"({"server_id":"ads-a","lease_ms":5000,"metrics_need_token":false})").ok());
  EXPECT_EQ(cfg.server_id, "ads-a");
  EXPECT_EQ(cfg.lease_ms, 5000);
  EXPECT_FALSE(cfg.metrics_need_token);
  EXPECT_EQ(field_of(R"({"lease_ms":999})"), "lease_ms");
  EXPECT_EQ(field_of(R"({"lease_ms":"5s"})"), "lease_ms");
  EXPECT_EQ(field_of(R"({"metrics_need_token":"no"})"), "metrics_need_token");
  EXPECT_EQ(field_of(R"({"server_id":7})"), "server_id");
}

}  // namespace

namespace {
// "sources": which lab sources are accepted, fetch limits, repository credentials.
TEST_F(ConfigFile, SourcesSettings) {
  ASSERT_TRUE(load(R"({"sources":{"local_roots":["/srv/labs"],"schemes":["https","http"],
    "allow_hosts":["git.example.org","*.labs.example"],"deny_hosts":["bad.example"],
    "allow_addresses":["127.0.0.1/32","10.20.0.0/16"],"deny_addresses":["192.168.0.0/16"],
    "max_fetch_bytes":1048576,"max_checkout_bytes":2097152,"max_checkout_files":50,
    "git_credentials":{"Git.Example.org":{"username":"labs","password_file":"/etc/ads/git.token"},
                       "ssh.example.org":{"ssh_key":"/etc/ads/id_ed25519"}},
    "ssh_host_keys":{"ssh.example.org":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}})")
                  .ok());
  auto& s = cfg.sources;
  EXPECT_EQ(s.policy.local_roots, std::vector<std::string>{"/srv/labs"});
  EXPECT_EQ(s.policy.schemes, (std::vector<std::string>{"https", "http"}));
  EXPECT_EQ(s.policy.allow_hosts.size(), 2u);
  EXPECT_EQ(s.policy.deny_hosts.size(), 1u);
  EXPECT_EQ(s.policy.allow_addresses.size(), 2u);
  ASSERT_EQ(s.policy.deny_addresses.size(), 1u) << "deny_addresses replaces the defaults";
  EXPECT_EQ(s.max_fetch_bytes, 1048576u);
  EXPECT_EQ(s.max_checkout_bytes, 2097152u);
  EXPECT_EQ(s.max_checkout_files, 50u);
  ASSERT_TRUE(s.credentials.count("git.example.org")) << "host names are kept in lower case";
  EXPECT_EQ(s.credentials["git.example.org"].password_file, "/etc/ads/git.token");
  EXPECT_EQ(s.credentials["ssh.example.org"].ssh_key, "/etc/ads/id_ed25519");
  EXPECT_EQ(s.ssh_host_keys.size(), 1u);
}

TEST_F(ConfigFile, SourcesDefaults) {
  ASSERT_TRUE(load("{}").ok());
  EXPECT_TRUE(cfg.sources.policy.local_roots.empty());
  EXPECT_EQ(cfg.sources.policy.schemes, (std::vector<std::string>{"https", "ssh", "git"}));
  EXPECT_FALSE(cfg.sources.policy.deny_addresses.empty());
  EXPECT_EQ(cfg.sources.max_fetch_bytes, 256u << 20);
  EXPECT_EQ(cfg.sources.max_checkout_bytes, 512u << 20);
}

TEST_F(ConfigFile, BadSourcesSettingsNameTheirKey) {
  struct Case {
    std::string json, field;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"sources":[]})", "sources"},
           {R"({"sources":{"local_roots":["relative/dir"]}})", "sources.local_roots"},
           {R"({"sources":{"schemes":["ftp"]}})", "sources.schemes"},
           {R"({"sources":{"schemes":["file"]}})", "sources.schemes"},
           {R"({"sources":{"allow_hosts":["bad host"]}})", "sources.allow_hosts"},
           {R"({"sources":{"deny_addresses":["10.0.0.1/8"]}})", "sources.deny_addresses"},
           {R"({"sources":{"allow_addresses":["nope"]}})", "sources.allow_addresses"},
           {R"({"sources":{"max_fetch_bytes":0}})", "sources.max_fetch_bytes"},
           {R"({"sources":{"max_checkout_bytes":"512mb"}})", "sources.max_checkout_bytes"},
           {R"({"sources":{"max_checkout_files":-1}})", "sources.max_checkout_files"},
           {R"({"sources":{"git_credentials":{"h.example":{"password":"inline"}}}})",
            "sources.git_credentials.h.example.password"},
           {R"({"sources":{"git_credentials":{"h.example":{"username":"u"}}}})", "sources.git_credentials.h.example"},
           {R"({"sources":{"git_credentials":{"h.example":{"password_file":"/p"}}}})",
            "sources.git_credentials.h.example.username"},
           {R"({"sources":{"git_credentials":{"h.example":{"username":"u","password_file":"rel"}}}})",
            "sources.git_credentials.h.example.password_file"},
           {R"({"sources":{"ssh_host_keys":{"h.example":"MD5:aa"}}})", "sources.ssh_host_keys.h.example"},
           {R"({"sources":{"colour":"blue"}})", "sources.colour"}}) {
    ads::cli::ServeConfig fresh;
    cfg = fresh;
    auto st = load(c.json);
    ASSERT_FALSE(st.ok()) << c.json;
    EXPECT_EQ(st.error().field, c.field) << c.json << ": " << st.error().message;
  }
}
}  // namespace
