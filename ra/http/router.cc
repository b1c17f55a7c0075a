#include "ra/http/router.h"

namespace scep::http {

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
    if (pattern.find_first_of("([\\*+?{|^$") == std::string::npos) {
        exact_[{method, pattern}] = std::move(handler);
    } else {
        patterns_.push_back({method, std::regex(pattern), std::move(handler)});
    }
}

const Handler* Router::find(Request& request) const {
    const std::string method = request.method == "HEAD" ? "GET" : request.method;
    if (const auto it = exact_.find({method, request.path}); it != exact_.end()) {
        request.matches = {request.path};
        return &it->second;
    }
    for (const Pattern& pattern : patterns_) {
        std::smatch match;
        if (pattern.method == method && std::regex_match(request.path, match, pattern.regex)) {
            request.matches.assign(match.begin(), match.end());
            return &pattern.handler;
        }
    }
    return nullptr;
}

}  // namespace scep::http
