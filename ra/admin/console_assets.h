// The web console, compiled into the binary by ra/admin/embed_assets.py.
#pragma once

#include <string_view>

namespace scep {

extern const std::string_view kConsoleIndexHtml;
extern const std::string_view kConsoleJs;
extern const std::string_view kConsoleCss;

}  // namespace scep
