// Method + path routing for ra/http/server: exact paths, or regular
// expressions whose captures land in Request::matches.
#pragma once

#include <functional>
#include <map>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "ra/http/message.h"

namespace scep::http {

using Handler = std::function<void(const Request&, Response&)>;

class Router {
public:
    // A pattern with regex syntax ( ( [ \ * + ? { | ^ $ ) must match the
    // whole path; any other pattern is an exact path ('.' included).
    void add(const std::string& method, const std::string& pattern, Handler handler);
    void Get(const std::string& pattern, Handler h) { add("GET", pattern, std::move(h)); }
    void Post(const std::string& pattern, Handler h) { add("POST", pattern, std::move(h)); }
    void Put(const std::string& pattern, Handler h) { add("PUT", pattern, std::move(h)); }
    void Patch(const std::string& pattern, Handler h) { add("PATCH", pattern, std::move(h)); }
    void Delete(const std::string& pattern, Handler h) { add("DELETE", pattern, std::move(h)); }

    // The handler for `request` (HEAD is routed like GET), with
    // request.matches filled in; nullptr when no route matches.
    const Handler* find(Request& request) const;

private:
    struct Pattern {
        std::string method;
        std::regex regex;
        Handler handler;
    };
    std::map<std::pair<std::string, std::string>, Handler> exact_;
    std::vector<Pattern> patterns_;
};

}  // namespace scep::http
