#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <ostream>

#include "common/fingerprint.h"
#include "ra/cli/commands.h"
#include "ra/crypto.h"

namespace scep::cli {

std::string utc(std::int64_t when) {
    const std::time_t t = static_cast<std::time_t>(when);
    struct tm parts {};
    gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%SZ", &parts);
    return text;
}

void printFingerprints(X509& ca, std::ostream& out) {
    out << "CA certificate: " << nameText(X509_get_subject_name(&ca)) << "\n"
        << "  SHA-1   fingerprint: " << toHex(certificateFingerprint(ca, Digest::sha1)) << "\n"
        << "  SHA-256 fingerprint: " << toHex(certificateFingerprint(ca, Digest::sha256)) << "\n";
}

std::string operatorName() {
    const char* user = std::getenv("SUDO_USER");
    if (!user) {
        const passwd* entry = getpwuid(geteuid());
        user = entry ? entry->pw_name : nullptr;
    }
    return std::string("cli:") + (user ? user : std::to_string(geteuid()).c_str());
}

}  // namespace scep::cli
