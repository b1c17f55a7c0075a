// The web console's files (console/, compiled in by embed_assets.py):
// public, and revalidated on every load so that an upgrade shows at once.
#pragma once

#include <string_view>

#include "ra/http/router.h"

namespace scep {

http::Handler consoleAsset(std::string_view body, const char* content_type);

// Browsers ask for it on their own; the console has none.
void noFavicon(const http::Request& req, http::Response& res);

}  // namespace scep
