// The deploy job's secret switch at starting_agent (docs/agent.md, "The
// secret on AWS"). The machine was made with d.secret as a bootstrap secret
// in its files, which others can read (EC2 user data); here a fresh secret
// is recorded as the deployment's BEFORE it is sent, then the agent takes it
// and refuses the bootstrap one from then on.
// Crash windows: ADS stopped after the record and before the agent took it
// (the agent still on the bootstrap secret): a deploy cut off by a stopped
// server runs again from the start on a new machine, the old one removed
// (job_deploy.cpp), so the bootstrap secret is never needed again and is not
// kept. An answer lost after the agent switched: hand_over_secret finds the
// agent on the recorded secret. The agent itself keeps the new secret before
// it uses it (agent/secret_file.h).
#include "agent/client.h"
#include "agent/handover.h"
#include "engine/engine.h"
#include "engine/internal.h"

namespace ads {
using namespace engine_detail;

Status Engine::replace_bootstrap_secret(Deployment& d, const std::function<Status(const Deployment&)>& record) {
  const std::string bootstrap = d.secret;
  d.secret = agent::random_hex(32);
  auto st = record(d);  // recorded before it is sent
  if (!st) return failed("cannot record the agent's new secret: " + st.error().message);
  std::string url = agent::AgentClient::url_for(d.address, opts_.agent_port);
  st = agent::hand_over_secret(url, bootstrap, d.secret, opts_.agent_timeout);
  if (!st) return st.error();
  log(d, "ads", "the agent took a new secret; the bootstrap one in the machine's user data no longer works");
  return Status::Ok();
}

}  // namespace ads
