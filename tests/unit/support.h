// Small helpers for unit tests: scratch directories and running tools.
#pragma once

#include <string>

namespace testsupport {

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

}  // namespace testsupport
