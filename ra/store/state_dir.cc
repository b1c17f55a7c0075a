#include "ra/store/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <openssl/evp.h>

#include "common/fingerprint.h"
#include "ra/ca/bootstrap.h"
#include "ra/crypto.h"
#include "ra/store/sqlite/files.h"

namespace scep {

namespace {

constexpr const char* kManifest = "SHA256SUMS";

// What a backup holds besides the database, with the mode each is written in.
const std::map<std::string, unsigned> kStateFiles = {
    {"ca.pem", 0644},    {"ca.key", 0600},    {"ra.pem", 0644}, {"ra.key", 0600},
    {"admin.pem", 0644}, {"admin.key", 0600}, {"crl.der", 0644}};

std::string readWhole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string sha256Hex(const std::string& content) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(content.data(), content.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    std::string hex = toHex(Bytes(digest, digest + length));
    for (char& c : hex) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return hex;
}

// SHA256SUMS as `sha256sum` writes it: "<hex>  <name>" per line.
std::map<std::string, std::string> readManifest(const std::string& dir) {
    const std::string path = dir + "/" + kManifest;
    if (!fileExists(path)) {
        throw std::runtime_error("'" + dir + "' is not a scep-ra backup: it has no " + kManifest);
    }
    std::map<std::string, std::string> sums;
    std::istringstream lines(readWhole(path));
    std::string line;
    while (std::getline(lines, line)) {
        const auto gap = line.find("  ");
        const std::string name = gap == std::string::npos ? "" : line.substr(gap + 2);
        if (name != kDatabaseFile && kStateFiles.count(name) == 0) {
            throw std::runtime_error("'" + path + "' lists an unexpected entry: '" + line + "'");
        }
        sums[name] = line.substr(0, gap);
    }
    if (sums.count(kDatabaseFile) == 0) {
        throw std::runtime_error("'" + path + "' lists no " + kDatabaseFile);
    }
    return sums;
}

// Moves an empty database and its stale -wal/-shm out of the way.
void moveAside(const std::string& database) {
    const std::string suffix = ".replaced-" + std::to_string(std::time(nullptr));
    for (const char* part : {"", "-wal", "-shm"}) {
        const std::string path = database + part;
        if (fileExists(path) && ::rename(path.c_str(), (path + suffix).c_str()) != 0) {
            throw std::runtime_error("cannot move '" + path + "' aside: " + std::strerror(errno));
        }
    }
}

}  // namespace

StateDirLock::StateDirLock(const Config& config) {
    const std::string path = stateFile(config, kLockFile);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int saved = errno;
        ::close(fd_);
        throw std::runtime_error(
            saved == EWOULDBLOCK
                ? "state-dir '" + config.ra.state_dir +
                      "' is in use by another scep-ra serve, init or restore (" + path + ")"
                : "cannot lock '" + path + "': " + std::strerror(saved));
    }
}

StateDirLock::~StateDirLock() {
    ::close(fd_);  // releases the flock
}

std::uint64_t availableBytes(const std::string& dir) {
    struct statvfs info {};
    if (::statvfs(dir.c_str(), &info) != 0) {
        return 0;
    }
    return static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
}

bool databaseMissing(const Config& config) {
    return sqliteSchemaVersion(stateFile(config, kDatabaseFile)) <= 0;
}

void requireDatabase(const Config& config) {
    const std::string database = stateFile(config, kDatabaseFile);
    const std::int64_t version = sqliteSchemaVersion(database);
    if (version > 0) {
        return;
    }
    throw std::runtime_error(
        "the CA in state-dir '" + config.ra.state_dir + "' exists but its database '" + database +
        "' is " + (version < 0 ? "missing" : "empty") +
        ": started like this, every revocation would be forgotten and revoked certificates would "
        "verify again. Restore the latest backup (scep-ra restore DIR), or, to continue without "
        "the earlier records on purpose, run 'scep-ra init' to create an empty database");
}

std::vector<std::string> backupStateDir(const Config& config, const std::string& destination) {
    if (::mkdir(destination.c_str(), 0700) != 0) {
        throw std::runtime_error("cannot create backup directory '" + destination +
                                 "': " + std::strerror(errno) +
                                 (errno == EEXIST ? " (it must not exist yet)" : ""));
    }
    requireDatabase(config);
    std::vector<std::string> written;
    std::string manifest;
    const std::string database = destination + "/" + kDatabaseFile;
    copySqliteDatabase(stateFile(config, kDatabaseFile), database);
    ::chmod(database.c_str(), 0600);
    manifest += sha256Hex(readWhole(database)) + "  " + kDatabaseFile + "\n";
    written.push_back(database);
    for (const auto& [name, mode] : kStateFiles) {
        const std::string from = stateFile(config, name.c_str());
        if (!fileExists(from)) {
            continue;
        }
        const std::string content = readWhole(from);
        writeNewFile(destination + "/" + name, content, mode);
        manifest += sha256Hex(content) + "  " + name + "\n";
        written.push_back(destination + "/" + name);
    }
    writeNewFile(destination + "/" + kManifest, manifest, 0644);
    written.push_back(destination + "/" + kManifest);
    syncDirectory(destination);
    return written;
}

std::vector<std::string> restoreStateDir(const Config& config, const std::string& source) {
    const auto sums = readManifest(source);
    std::map<std::string, std::string> contents;
    for (const auto& [name, sum] : sums) {
        const std::string content = readWhole(source + "/" + name);
        if (sha256Hex(content) != sum) {
            throw std::runtime_error(
                "'" + source + "/" + name +
                "' does not match its SHA256SUMS entry: the backup is damaged");
        }
        if (name != kDatabaseFile) {
            contents[name] = content;
        }
    }
    // Check everything before writing anything.
    const std::string database = stateFile(config, kDatabaseFile);
    if (sqliteSchemaVersion(database) > 0) {
        throw std::runtime_error(
            "'" + database +
            "' already holds a database: restore never overwrites records. Stop "
            "scep-ra and move scep-ra.db* out of state-dir first");
    }
    std::vector<std::string> missing;
    for (const auto& [name, content] : contents) {
        const std::string target = stateFile(config, name.c_str());
        if (!fileExists(target)) {
            missing.push_back(name);
        } else if (readWhole(target) != content) {
            throw std::runtime_error("'" + target +
                                     "' differs from the backup's copy: restore never "
                                     "replaces a key or certificate. Check which one is right and "
                                     "move the other away");
        }
    }
    std::vector<std::string> restored;
    for (const std::string& name : missing) {
        const std::string target = stateFile(config, name.c_str());
        writeNewFile(target, contents[name], kStateFiles.at(name));
        restored.push_back(target);
    }
    moveAside(database);
    copySqliteDatabase(source + "/" + kDatabaseFile, database);
    ::chmod(database.c_str(), 0600);
    restored.push_back(database);
    syncDirectory(config.ra.state_dir);
    return restored;
}

}  // namespace scep
