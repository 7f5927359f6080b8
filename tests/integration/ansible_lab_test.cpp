// The Ansible install contract on real LXD containers through a real
// `ads serve`: examples/labs/ansible-lab is installed only by its playbook,
// tested, backed up and restored by playbooks, in both modes: from the ADS
// host over SSH (controller, the default: ansible-playbook in a bubblewrap
// sandbox, a key made for the run that the machine forgets after it) and
// inside the machine (local, image variant "build"); a failing task's error
// names the task and host; what the sandboxed controller can see of the
// host; a lab on the minimal image, or a host without Ansible, says what it
// lacks; a check (--check --diff) says what would change and changes nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>

#include "support/ads_server.h"
#include "support/build_paths.h"

namespace {
using namespace ads::test;

class AnsibleLabTest : public LxdServerTest {
 protected:
  // A copy of the ansible example lab with one file replaced.
  std::string lab_with(const std::string& rel, const std::string& content) {
    fs::path dir = copy_of("ansible-lab");
    std::ofstream(dir / rel, std::ios::trunc) << content;
    return dir.string();
  }
  // `git ARGS` in `repo` as a test identity; its output.
  std::string git(const fs::path& repo, std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "git", "-C", repo.string(), "-c", "user.name=ads-test", "-c", "user.email=ads@test.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(run(argv, &out), 0) << out;
    return out;
  }
  // A git repository of a copy of example lab `name`: one commit, "v1", on main.
  fs::path git_lab(const std::string& name) {
    fs::path repo = copy_of(name);
    git(repo, {"init", "-q", "-b", "main"});
    git(repo, {"add", "-A"});
    git(repo, {"commit", "-q", "-m", "v1"});
    return repo;
  }
  // The machine has no SSH key of a run left and no sshd running.
  void machine_forgot_the_key(const std::string& machine) {
    std::string out;
    EXPECT_NE(run({"lxc", "exec", machine, "--", "test", "-e", "/etc/ads-agent/ssh/authorized_keys"}, &out), 0)
        << "a run's key is still in " << machine;
    EXPECT_NE(run({"lxc", "exec", machine, "--", "busybox", "pidof", "sshd"}, &out), 0) << "sshd runs: " << out;
    // but the door was there: the machine's own host key, made on first use
    EXPECT_EQ(run({"lxc", "exec", machine, "--", "test", "-s", "/etc/ads-agent/ssh/host_ed25519_key.pub"}, &out), 0);
  }
};

TEST_F(AnsibleLabTest, ThePlaybookLabInstallsRunsTestsBacksUpAndRestores) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/ansible-lab", "alab");
  json d = s.wait_for(id, {"running", "failed"}, 600);
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  std::string url = d["url"];

  // the page comes from the playbook's template, with the variables ADS passed
  std::string page = http_get(url);
  EXPECT_NE(page.find("Installed by Ansible 2.14"), std::string::npos) << page;
  EXPECT_NE(page.find("<code>" + id + "</code> (alab)"), std::string::npos) << page;
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("from image ads-debian-12-build (for debian-12-build)"), std::string::npos) << log;
  EXPECT_NE(log.find("TASK [The front page is written from its template]"), std::string::npos) << log;
  // run from the ADS host over SSH, not in the machine
  EXPECT_NE(log.find("$ ansible-playbook -i <inventory: root@" + d["address"].get<std::string>() +
                     " over SSH> -e <ads_* variables> -- playbooks/site.yml  (from the ADS host, in a sandbox)"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("-c local"), std::string::npos) << log;
  EXPECT_NE(log.find("ok: [alab]"), std::string::npos) << log;
  machine_forgot_the_key(d["machine"]);

  EXPECT_NE(http_get(url + "add?alpha").find("added"), std::string::npos);
  json job = op(s, id, "backup");  // a playbook copies the notes into the backup directory
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  std::string backup = job["result"]["backup"];
  EXPECT_NE(http_get(url + "add?beta").find("added"), std::string::npos);
  EXPECT_EQ(http_get(url + "notes"), "alpha\nbeta\n");

  json req = {{"backup", backup}};
  job = op(s, id, "restore", &req);  // a playbook copies them back
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(http_get(url + "notes"), "alpha\n");

  job = op(s, id, "test");  // the test action is a playbook (uri + assert)
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["passed"], true);
  EXPECT_EQ(job["result"]["test_exit_code"], 0);
  // every run let its own key in and took it out again
  machine_forgot_the_key(d["machine"]);
}

TEST_F(AnsibleLabTest, InLocalModeThePlaybooksRunInsideTheMachine) {
  Server s((tmp.path / "data").string());
  std::string dir = lab_with_spec("ansible-lab", [](json& spec) {
    spec["ansible"] = {{"playbook", spec["ansible"]}, {"mode", "local"}};
  });
  std::string id = deploy(s, dir, "local");
  json d = s.wait_for(id, {"running", "failed"}, 600);
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  std::string page = http_get(d["url"]);
  EXPECT_NE(page.find("<code>" + id + "</code> (local)"), std::string::npos) << page;
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("ansible-playbook -i localhost, -c local -e <ads_* variables> -- playbooks/site.yml"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("over SSH"), std::string::npos) << log;
  json job = op(s, id, "backup");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  // a check: the machine's agent runs the playbook with --check --diff; the
  // directory as it is now (a new front page) would change the template's task
  job = op(s, id, "check");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["changed_tasks"], json::array()) << job.dump() << s.log_text(id);
  {
    std::ifstream in(fs::path(dir) / "playbooks/templates/index.html.j2");
    std::string t((std::istreambuf_iterator<char>(in)), {});
    t.replace(t.find("ADS example: ansible-lab"), 24, "Version two of the lab");
    std::ofstream(fs::path(dir) / "playbooks/templates/index.html.j2", std::ios::trunc) << t;
  }
  json with_diff = {{"diff", true}};
  job = op(s, id, "check", &with_diff);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["changed_tasks"], json::array({"The front page is written from its template"}))
      << job.dump() << s.log_text(id);
  log = s.log_text(id);
  EXPECT_NE(log.find("ansible-playbook -i localhost, -c local -e <ads_* variables> --check --diff -- "
                     "playbooks/site.yml"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("+<h1>Version two of the lab</h1>"), std::string::npos) << log;
  EXPECT_NE(http_get(d["url"]).find("ADS example: ansible-lab"), std::string::npos);  // unchanged
  // the lab as deployed: nothing changed on the machine since
  json as_deployed = {{"as_deployed", true}};
  job = op(s, id, "check", &as_deployed);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["changed_tasks"], json::array()) << job.dump() << s.log_text(id);
  std::string left;
  EXPECT_NE(run({"lxc", "exec", d["machine"], "--", "test", "-e", "/opt/lab.check"}, &left), 0)
      << "the checked copy is left in the machine";
  // a ref for a plain directory's lab: 400 at once, nothing queued
  json req = {{"ref", "main"}};
  long status = 0;
  json r = s.call("POST", "/api/v1/deployments/" + id + "/check", &req, &status);
  EXPECT_EQ(status, 400) << r.dump();
  EXPECT_EQ(r["error"].value("field", ""), "ref") << r.dump();
  // no SSH door was ever opened
  std::string out;
  EXPECT_NE(run({"lxc", "exec", d["machine"], "--", "test", "-e", "/etc/ads-agent/ssh/host_ed25519_key"}, &out), 0);
  // a stopped lab: 409, it must be running
  ASSERT_EQ(op(s, id, "stop")["state"], "succeeded");
  r = s.call("POST", "/api/v1/deployments/" + id + "/check", nullptr, &status);
  EXPECT_EQ(status, 409) << r.dump();
  EXPECT_NE(r["error"].value("message", "").find("it must be running"), std::string::npos) << r.dump();
}

TEST_F(AnsibleLabTest, TheControllersSandboxSeesNoneOfTheHostsSecrets) {
  // the lab's test playbook runs tasks on the controller itself (delegate_to:
  // localhost, a pipe lookup): lab code on the ADS host, in the sandbox
  fs::path data = tmp.path / "data";
  std::string probe = R"(- name: What lab code sees on the ADS host
  hosts: all
  gather_facts: false
  tasks:
    - name: The controller runs as nobody, with no capabilities
      ansible.builtin.command: cat /proc/self/status
      delegate_to: localhost
      register: status
    - name: ADS's data, its config, the host's SSH keys and LXD are out of sight
      ansible.builtin.stat:
        path: "{{ item }}"
      delegate_to: localhost
      register: seen
      loop:
        - ")" + data.string() +
                      R"("
        - /etc/ssh/ssh_host_ed25519_key
        - /etc/shadow
        - /var/lib/lxd
        - /etc/ads
    - name: Not even the ADS API on the host's loopback answers (no network)
      ansible.builtin.uri:
        url: "API_BASE/api/v1/health"
        timeout: 5
      delegate_to: localhost
      register: api
      ignore_errors: true
    - name: Report
      ansible.builtin.debug:
        msg: "uid {{ status.stdout_lines | select('match', '^Uid:') | first }}; caps {{ status.stdout_lines | select('match', '^CapEff:') | first }}; seen {{ seen.results | selectattr('stat.exists') | map(attribute='item') | list }}; pids {{ lookup('pipe', 'ls /proc | grep -c ^[0-9]') }}"
    - name: Nothing of it is visible
      ansible.builtin.assert:
        that:
          - (status.stdout_lines | select('match', '^Uid:[^0-9]+65534[^0-9]') | list | length) == 1
          - (status.stdout_lines | select('match', '^CapEff:[^0-9]+0+$') | list | length) == 1
          - (seen.results | selectattr('stat.exists') | list | length) == 0
          - api is failed
)";
  Server s(data.string());
  probe.replace(probe.find("API_BASE"), 8, s.base());
  fs::path dir = lab_with_spec("ansible-lab", [](json& spec) {
    spec["actions"]["test"] = {{"playbook", "playbooks/probe.yml"}};
  });
  std::ofstream(dir / "playbooks" / "probe.yml") << probe;
  std::string id = deploy(s, dir.string(), "probe");
  json d = s.wait_for(id, {"running", "failed"}, 600);
  std::string log = s.log_text(id);
  ASSERT_EQ(d["state"], "running") << d.dump() << log;  // the deploy's test action is the probe
  EXPECT_NE(log.find("TASK [Nothing of it is visible]"), std::string::npos) << log;
  EXPECT_NE(log.find("All assertions passed"), std::string::npos) << log;
  EXPECT_NE(log.find("seen []"), std::string::npos) << log;
  // the API answers from outside the sandbox: the failure above is the sandbox's
  EXPECT_EQ(s.call("GET", "/api/v1/health").value("status", ""), "ok");
}

TEST_F(AnsibleLabTest, AHostWithoutAnsibleSaysWhatItLacks) {
  fs::path cfg = tmp.path / "config.json";
  std::ofstream(cfg) << json{{"ansible", {{"playbook", (tmp.path / "no-ansible-here").string()}}}}.dump();
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", cfg.string());
  std::string id = deploy(s, kSource + "/examples/labs/ansible-lab", "noansible");
  json d = s.wait_for(id, {"running", "failed"}, 300);
  ASSERT_EQ(d["state"], "failed") << d.dump();
  EXPECT_NE(d.value("error", "")
                .find("install: the lab's playbooks run from the ADS host (\"ansible\" mode "
                      "\"controller\"), which has no ansible-playbook (Debian: ansible-core) at " +
                      (tmp.path / "no-ansible-here").string()),
            std::string::npos)
      << d.dump();
}

TEST_F(AnsibleLabTest, AFailingTaskFailsTheDeployAndTheErrorNamesTheTaskAndHost) {
  Server s((tmp.path / "data").string());
  std::string broken = R"(- name: Install, badly
  hosts: all
  gather_facts: false
  tasks:
    - name: The page is copied from nowhere
      ansible.builtin.copy:
        src: /nonexistent/page.html
        dest: /opt/page.html
        remote_src: true
)";
  std::string id = deploy(s, lab_with("playbooks/site.yml", broken), "broken");
  json d = s.wait_for(id, {"running", "failed"}, 600);
  ASSERT_EQ(d["state"], "failed") << d.dump();
  std::string err = d.value("error", "");
  EXPECT_NE(err.find("install failed with exit code 2: ansible: task 'The page is copied from nowhere' failed on "
                     "broken: "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("/nonexistent/page.html"), std::string::npos) << err;
}

TEST_F(AnsibleLabTest, APlaybookLabOnTheMinimalImageSaysWhatItLacks) {
  Server s((tmp.path / "data").string());
  // controller mode: no sshd to let the controller in
  std::string id = deploy(s, lab_with_spec("ansible-lab", [](json& spec) { spec["os"].erase("variant"); }), "nossh");
  json d = s.wait_for(id, {"running", "failed"}, 300);
  ASSERT_EQ(d["state"], "failed") << d.dump();
  EXPECT_NE(d.value("error", "")
                .find("install: the machine does not let ansible-playbook in: openssh-server is "
                      "not installed in this machine"),
            std::string::npos)
      << d.dump();
  // local mode: no ansible-playbook in the machine
  std::string dir = lab_with_spec("ansible-lab", [](json& spec) {
    spec["os"].erase("variant");
    spec["ansible"] = {{"playbook", spec["ansible"]}, {"mode", "local"}};
  });
  id = deploy(s, dir, "minimal");
  d = s.wait_for(id, {"running", "failed"}, 300);
  ASSERT_EQ(d["state"], "failed") << d.dump();
  EXPECT_NE(d.value("error", "")
                .find("install failed with exit code 127: ansible: ansible-playbook is not installed "
                      "in this machine"),
            std::string::npos)
      << d.dump();
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("ansible-playbook is not installed in this machine"), std::string::npos) << log;
}

TEST_F(AnsibleLabTest, ImagesSaysWhichImageServesEachOsKeyAndHowToGetAMissingOne) {
  fs::path cfg = tmp.path / "config.json";
  std::ofstream(cfg) << json{{"providers",
                              {{"lxd",
                                {{"images",
                                  {{"debian-12", "ads-debian-12"},
                                   {"debian-12-build", "ads-debian-12-build"},
                                   {"ubuntu-12.04", "ads-debian-12-build"},
                                   {"debian-12-php", "ads-debian-12-php"}}}}}}}}
                            .dump();
  Server s((tmp.path / "data").string(), ADS_AGENT_BIN, {}, "2", cfg.string());
  json answer = s.call("GET", "/api/v1/images");
  ASSERT_EQ(answer["providers"].size(), 1u) << answer.dump();
  json lxd = answer["providers"][0];
  EXPECT_EQ(lxd["provider"], "lxd");
  EXPECT_EQ(lxd["default"], true);
  std::map<std::string, json> by_os;
  for (auto& i : lxd["images"]) by_os[i["os"]] = i;
  ASSERT_EQ(by_os.size(), 4u) << lxd.dump();
  EXPECT_EQ(by_os["debian-12"]["state"], "available");
  EXPECT_EQ(by_os["debian-12-build"]["state"], "available");
  EXPECT_EQ(by_os["ubuntu-12.04"]["image"], "ads-debian-12-build");  // the operator's alias of an old OS
  EXPECT_EQ(by_os["ubuntu-12.04"]["state"], "available");
  EXPECT_EQ(by_os["debian-12-php"]["state"], "missing");
  EXPECT_EQ(by_os["debian-12-php"]["note"],
            "import it into LXD (lxc image import), or name an image server for its key");

  // the CLI prints the same as a table
  std::string out;
  int rc = run({ADS_CLI_BIN, "--server", s.base(), "--token", s.token(), "images"}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("lxd *"), std::string::npos) << out;
  EXPECT_NE(out.find("ads-debian-12-php"), std::string::npos) << out;
  EXPECT_NE(out.find("missing"), std::string::npos) << out;

  // a lab on an OS key with no image at all is refused with the known keys
  std::string dir = lab_with_spec("static-site", [](json& spec) { spec["os"]["variant"] = "nothere"; });
  std::string id = deploy(s, dir, "nokey");
  json d = s.wait_for(id, {"running", "failed"}, 120);
  ASSERT_EQ(d["state"], "failed") << d.dump();
  EXPECT_NE(d.value("error", "")
                .find("provider lxd has no image for debian-12-nothere (known: debian-12, "
                      "debian-12-build, debian-12-php, ubuntu-12.04)"),
            std::string::npos)
      << d.dump();
}

}  // namespace

namespace {
using namespace ads::test;

// A later playbook action of a lab from a git repository runs the files as
// deployed, not what the branch holds now: from the archive the machine's
// agent kept of the deploy's upload (so also with the repository gone), or,
// from an agent that kept none, the deployment's commit checked out again
// (straight into the run's directory).
TEST_F(AnsibleLabTest, ALaterPlaybookActionRunsTheDeployedFilesOfAGitLabAlsoWithTheRepositoryGone) {
  fs::path repo = git_lab("ansible-lab");
  auto git = [&](std::vector<std::string> args) { return this->git(repo, std::move(args)); };
  Server s((tmp.path / "data").string());
  json req = {{"source", repo.string()}, {"ref", "main"}, {"name", "gitlab"}};
  json accepted = s.call("POST", "/api/v1/deployments", &req);
  std::string id = accepted.value("id", "");
  guard.ids.insert(id);
  json d = s.wait_for(id, {"running", "failed"}, 600);
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  // the branch moves on with a test playbook that fails: the deployed commit's still passes
  std::ofstream(repo / "playbooks" / "test.yml", std::ios::trunc)
      << "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.fail: {msg: not deployed}\n";
  git({"commit", "-q", "-am", "v2"});
  const std::string machine = d["machine"];
  std::string out;
  // an agent without a copy (as one from before it kept it): the commit again
  ASSERT_EQ(run({"lxc", "exec", machine, "--", "mv", "/opt/lab.tar.gz", "/opt/away.tar.gz"}, &out), 0) << out;
  json job = op(s, id, "test");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["passed"], true);
  std::string log = s.log_text(id);
  EXPECT_EQ(log.find("not deployed"), std::string::npos) << log;
  EXPECT_NE(log.find("kept no copy of the lab (one from before it did, or it could not write it): fetching commit " +
                     d.value("commit", "?") + " again"),
            std::string::npos)
      << log;
  // with the copy: from it, also with the repository gone
  ASSERT_EQ(run({"lxc", "exec", machine, "--", "mv", "/opt/away.tar.gz", "/opt/lab.tar.gz"}, &out), 0) << out;
  fs::remove_all(repo);
  job = op(s, id, "test");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["passed"], true);
  log = s.log_text(id);
  EXPECT_NE(log.find("the lab's files: as deployed, from the machine's copy"), std::string::npos) << log;
  EXPECT_EQ(log.find("not deployed"), std::string::npos) << log;
  // the test job ran the test playbook (a page that no longer names the lab fails it)
  ASSERT_EQ(run({"lxc", "exec", machine, "--", "sh", "-c", "echo changed > /opt/ansible-lab/index.html"}, &out), 0)
      << out;
  job = op(s, id, "test");
  EXPECT_EQ(job["state"], "failed") << job.dump();
  EXPECT_EQ(job["result"]["passed"], false) << job.dump();
  EXPECT_NE(job.value("error", "").find("ansible: task 'The page is the one the playbook wrote' failed on gitlab"),
            std::string::npos)
      << job.dump() << s.log_text(id);
  machine_forgot_the_key(d["machine"]);
}

}  // namespace

namespace {
using namespace ads::test;

// The machine's copy of the lab is the lab's to change (it is root in its
// machine). A hostile one (a member climbing out with "..", an absolute
// path, a link to the host's /etc with a file through it) writes nothing on
// the ADS host: tar runs in a sandbox that sees only the run's empty lab
// directory. The action fails saying what tar refused.
TEST_F(AnsibleLabTest, AHostileCopyOfTheLabInTheMachineWritesNothingOnTheHost) {
  Server s((tmp.path / "data").string());
  std::string id = deploy(s, kSource + "/examples/labs/ansible-lab", "hostile");
  json d = s.wait_for(id, {"running", "failed"}, 600);
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  const std::string tag = std::to_string(::getpid());
  const std::vector<fs::path> planted = {"/tmp/ads-climbed-" + tag, "/tmp/ads-absolute-" + tag,
                                         "/etc/ads-planted-" + tag};
  // built with Python's tarfile, which writes any member name it is given
  const fs::path tgz = tmp.path / "hostile.tar.gz";
  std::string py =
      "import io, tarfile\n"
      "t = tarfile.open('" +
      tgz.string() +
      "', 'w:gz')\n"
      "def add(name, data=b'x'):\n"
      "    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))\n"
      "add('ads-lab.json', open('" +
      kSource +
      "/examples/labs/ansible-lab/ads-lab.json', 'rb').read())\n"
      "add('../../../../../../tmp/ads-climbed-" +
      tag +
      "')\n"
      "add('/tmp/ads-absolute-" +
      tag +
      "')\n"
      "l = tarfile.TarInfo('etc'); l.type = tarfile.SYMTYPE; l.linkname = '/etc'; t.addfile(l)\n"
      "add('etc/ads-planted-" +
      tag +
      "')\n"
      "t.close()\n";
  std::string out;
  ASSERT_EQ(run({"python3", "-c", py}, &out), 0) << out;
  const std::string machine = d["machine"];
  ASSERT_EQ(run({"lxc", "file", "push", tgz.string(), machine + "/opt/lab.tar.gz"}, &out), 0) << out;

  json job = op(s, id, "test");
  EXPECT_EQ(job["state"], "failed") << job.dump();
  const std::string error = job.value("error", "");
  EXPECT_NE(error.find("cannot unpack the lab's files the machine kept: "), std::string::npos)
      << job.dump() << s.log_text(id);
  EXPECT_NE(error.find("Member name contains '..'"), std::string::npos) << error;
  EXPECT_NE(error.find("etc/ads-planted-" + tag + ": Cannot open: Not a directory"), std::string::npos) << error;
  EXPECT_EQ(error.find("Removing leading"), std::string::npos) << error;
  for (const auto& p : planted) EXPECT_FALSE(fs::exists(fs::symlink_status(p))) << p << " was written on the host";
  // the run's directory is gone with its key, whatever the archive did
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tmp.path / "data" / "work", ec))
    EXPECT_EQ(e.path().filename().string().rfind("ansible-", 0), std::string::npos) << e.path();
  // and the lab still runs
  EXPECT_EQ(s.call("GET", "/api/v1/deployments/" + id)["state"], "running");
}

}  // namespace

namespace {
using namespace ads::test;

// `ads check` (the check job): the install playbook in Ansible's check mode
// (--check, and --diff when asked) against the running machine, from the ADS
// host (the local mode's check: InLocalModeThePlaybooksRunInsideTheMachine).
// What a new commit would change, what changed on the machine since the
// deploy (the lab as deployed), an older commit that changes nothing; a task
// that fails in check mode fails the job and names the task; nothing on the
// machine changes; a lab without a playbook is refused.
TEST_F(AnsibleLabTest, ACheckSaysWhatThePlaybookWouldChangeAndChangesNothing) {
  fs::path repo = git_lab("ansible-lab");
  auto git = [&](std::vector<std::string> args) { return this->git(repo, std::move(args)); };
  std::string v1 = git({"rev-parse", "HEAD"});
  v1 = v1.substr(0, v1.find('\n'));
  Server s((tmp.path / "data").string());
  json req = {{"source", repo.string()}, {"ref", "main"}, {"name", "chk"}};
  json accepted = s.call("POST", "/api/v1/deployments", &req);
  std::string id = accepted.value("id", "");
  guard.ids.insert(id);
  json d = s.wait_for(id, {"running", "failed"}, 600);
  ASSERT_EQ(d["state"], "running") << d.dump() << s.log_text(id);
  const std::string machine = d["machine"], url = d["url"];
  auto page = [&] {
    std::string out;
    EXPECT_EQ(run({"lxc", "exec", machine, "--", "cat", "/opt/ansible-lab/index.html"}, &out), 0) << out;
    return out;
  };
  const std::string deployed_page = page();
  ASSERT_NE(deployed_page.find("ADS example: ansible-lab"), std::string::npos) << deployed_page;

  // the branch as it is: the deployed commit, nothing would change
  json job = op(s, id, "check");
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["kind"], "check");
  EXPECT_EQ(job["result"]["changed_tasks"], json::array()) << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["recap"]["changed"], 0) << job.dump();
  EXPECT_EQ(job["result"]["commit"], v1);
  std::string log = s.log_text(id);
  EXPECT_NE(log.find("-e <ads_* variables> --check -- playbooks/site.yml"), std::string::npos) << log;
  EXPECT_NE(log.find("check: nothing would change"), std::string::npos) << log;

  // the branch moves on with a new front page: its template task would change, with its diff
  {
    std::ifstream in(repo / "playbooks/templates/index.html.j2");
    std::string t((std::istreambuf_iterator<char>(in)), {});
    t.replace(t.find("ADS example: ansible-lab"), 24, "Version two of the lab");
    std::ofstream(repo / "playbooks/templates/index.html.j2", std::ios::trunc) << t;
  }
  git({"commit", "-q", "-am", "v2"});
  json with_diff = {{"diff", true}};
  job = op(s, id, "check", &with_diff);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["changed_tasks"], json::array({"The front page is written from its template"}))
      << job.dump() << s.log_text(id);
  EXPECT_NE(job["result"]["commit"], v1);
  log = s.log_text(id);
  EXPECT_NE(log.find("-<h1>ADS example: ansible-lab</h1>"), std::string::npos) << log;
  EXPECT_NE(log.find("+<h1>Version two of the lab</h1>"), std::string::npos) << log;
  EXPECT_NE(log.find("check: 1 task(s) would change: 'The front page is written from its template'"), std::string::npos)
      << log;
  EXPECT_EQ(page(), deployed_page);  // nothing changed on the machine
  EXPECT_NE(http_get(url).find("ADS example: ansible-lab"), std::string::npos);

  // an older commit by its id: the deployed one, nothing would change
  req = {{"ref", v1}};
  job = op(s, id, "check", &req);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["changed_tasks"], json::array()) << job.dump() << s.log_text(id);

  // drift: a file changed by hand on the machine; the lab as deployed would put it back
  std::string out;
  ASSERT_EQ(run({"lxc", "exec", machine, "--", "sh", "-c", "echo edited by hand > /opt/ansible-lab/index.html"}, &out),
            0)
      << out;
  req = {{"as_deployed", true}, {"diff", true}};
  job = op(s, id, "check", &req);
  ASSERT_EQ(job["state"], "succeeded") << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["changed_tasks"], json::array({"The front page is written from its template"}))
      << job.dump() << s.log_text(id);
  EXPECT_EQ(job["result"]["commit"], v1);
  log = s.log_text(id);
  EXPECT_NE(log.find("-edited by hand"), std::string::npos) << log;
  EXPECT_NE(log.find("the lab's files: as deployed, from the machine's copy"), std::string::npos) << log;
  EXPECT_EQ(page(), "edited by hand\n");  // still: a check repairs nothing
  // the same from the command line: the diff as it comes, then the summary
  std::vector<std::string> cli = {ADS_CLI_BIN, "--server", s.base(),     "--token", s.token(),
                                  "check",     id,         "--deployed", "--diff"};
  ASSERT_EQ(run(cli, &out), 0) << out;
  EXPECT_NE(out.find("-edited by hand"), std::string::npos) << out;
  EXPECT_NE(out.find("check: 1 task(s) would change:\n  - The front page is written from its template\n"),
            std::string::npos)
      << out;
  cli.insert(cli.end(), {"--ref", "main"});  // the lab as deployed has its own commit
  EXPECT_EQ(run(cli, &out), 2) << out;

  // a task that fails in check mode fails the job and is named; the lab runs on
  std::ofstream(repo / "playbooks/site.yml", std::ios::app)
      << "\n- name: A play of the new version\n  hosts: all\n  gather_facts: false\n  tasks:\n"
         "    - name: A step that cannot pass\n      ansible.builtin.fail: {msg: refused in this version}\n";
  git({"commit", "-q", "-am", "v3"});
  job = op(s, id, "check");
  ASSERT_EQ(job["state"], "failed") << job.dump();
  EXPECT_NE(job.value("error", "").find("task 'A step that cannot pass' failed on chk: refused in this version"),
            std::string::npos)
      << job.dump() << s.log_text(id);
  EXPECT_EQ(s.call("GET", "/api/v1/deployments/" + id)["state"], "running");

  // a ref that does not exist
  req = {{"ref", "no-such-branch"}};
  job = op(s, id, "check", &req);
  ASSERT_EQ(job["state"], "failed") << job.dump();
  EXPECT_NE(job.value("error", "").find("no branch, tag or commit named \"no-such-branch\""), std::string::npos)
      << job.dump();

  // the lab now installs with commands: nothing to check, and why
  fs::remove(repo / "ads-lab.json");
  {
    json spec = {{"ads", 2},
                 {"name", "cmds"},
                 {"os", {{"name", "debian"}, {"version", "12"}}},
                 {"install", {"true"}},
                 {"actions", {{"start", {"true"}}}}};
    std::ofstream(repo / "ads-lab.json") << spec.dump(2);
  }
  git({"add", "-A"});
  git({"commit", "-q", "-m", "v4"});
  job = op(s, id, "check");
  ASSERT_EQ(job["state"], "failed") << job.dump();
  EXPECT_NE(job.value("error", "").find("installs with commands, not with an Ansible playbook"), std::string::npos)
      << job.dump() << s.log_text(id);
  machine_forgot_the_key(machine);
}

}  // namespace
