#include "http/tls_stream.h"

namespace ads::http {
namespace {
class TlsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ads.tls"; }
  std::string message(int /*ev*/) const override { return "TLS failed (handshake or record)"; }
};
}  // namespace

const boost::system::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

}  // namespace ads::http
