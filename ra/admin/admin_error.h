// Administrative refusals, mapped by front ends to 404 / 409 / 400 (the
// API) or exit codes 3 / 4 (the CLI).
#pragma once

#include <stdexcept>
#include <string>

namespace scep {

class AdminError : public std::runtime_error {
public:
    enum class Kind { not_found, conflict, invalid };
    AdminError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

}  // namespace scep
