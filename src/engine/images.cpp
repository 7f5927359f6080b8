// `ads images`: what each provider can put a lab on, asked of the providers.
#include "engine/engine.h"

namespace ads {

std::vector<Engine::ProviderImages> Engine::images() {
  std::vector<ProviderImages> out;
  for (auto& [kind, p] : providers_) {
    ProviderImages pi;
    pi.provider = kind;
    pi.is_default = kind == opts_.default_provider;
    auto imgs = p->images();
    if (imgs) pi.images = std::move(imgs.value());
    else pi.error = imgs.error();
    out.push_back(std::move(pi));
  }
  return out;
}

}  // namespace ads
