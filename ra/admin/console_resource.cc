#include "ra/admin/console_resource.h"

namespace scep {

http::Handler consoleAsset(std::string_view body, const char* content_type) {
    return [body, content_type](const http::Request&, http::Response& res) {
        res.set_content(body.data(), body.size(), content_type);
        res.set_header("Cache-Control", "no-cache");
    };
}

void noFavicon(const http::Request&, http::Response& res) {
    res.status = 204;
}

}  // namespace scep
