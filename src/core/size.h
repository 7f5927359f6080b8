// Size strings of the seed lab spec ("256mb", "2gb", "512M", "10 GB").
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ads {

// Megabytes for a size string, using the seed system's grammar: an integer,
// optional spaces, then letters; a unit containing G multiplies by 1024, K
// divides by 1024, M (or no unit) is taken as is. Returns nullopt for any
// other shape, including letters with none of G, K, M ("10 parsecs"). The empty string means "default" and gives 0.
std::optional<uint64_t> parse_size_mb(std::string_view s);

}  // namespace ads
