// Small helpers for unit tests: scratch directories and running tools.
#pragma once

#include <string>

namespace testsupport {

// The phone guide's worked example (seed 001) as a [[profile]] body: every
// key but `name` and `vendor-class`.
inline const std::string kSeedProfileBody = R"(server = "http://10.79.57.91"
fingerprint = "12040870625C5B755D73F5925285F8F5FF5D55AF"
challenge = "D233CCF9B9952A15"
fips = true
dot1x = true
cert-select = "custom"
domain = "example.nl"
)";

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    std::string write(const std::string& name, const std::string& content) const;

private:
    std::string path_;
};

// Runs a shell command; returns its stdout. Fails the test (throws) if the
// command cannot run or exits non-zero, quoting its output.
std::string run(const std::string& command);

// Throws with an install hint if `tool` is not on PATH.
void requireTool(const std::string& tool, const std::string& debian_package);

// The whole file ("" when it cannot be read).
std::string readText(const std::string& path);

// The permission bits of `path` (e.g. 0600). Throws when it cannot be stat'ed.
unsigned modeOf(const std::string& path);

}  // namespace testsupport
