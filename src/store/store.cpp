#include "store/store.h"

#include <filesystem>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace ads {

Result<std::unique_ptr<Store>> open_store(const std::string& url, size_t connections) {
  std::string path;
  const std::string sqlite_scheme = "sqlite://";
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return PostgresStore::open(url, connections == 0 ? PostgresStore::kConnections : connections);
  } else if (url.rfind(sqlite_scheme, 0) == 0) {
    path = url.substr(sqlite_scheme.size());
  } else if (url.find("://") == std::string::npos && !url.empty()) {
    path = url;
  } else {
    return Error::invalid("store", "unsupported store \"" + url +
                                       "\" (supported: sqlite://PATH, a file path, postgresql://USER@HOST:PORT/DB)");
  }
  if (path.empty()) return Error::invalid("store", "the SQLite store needs a file path");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return SqliteStore::open(path);
}

}  // namespace ads
