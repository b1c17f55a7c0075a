// scep-ra: the SCEP registration authority and its admin commands. This file
// only dispatches; the commands are in ra/cli/.
#include <malloc.h>

#include <ctime>
#include <iostream>

#include "ra/admin/admin_error.h"
#include "ra/cli/commands.h"
#include "ra/config.h"
#include "ra/crypto.h"
#include "ra/store/state_dir.h"

namespace {

// glibc hands the free top of a worker thread's heap back to the kernel
// (madvise) once it exceeds 128 KiB, and SQLite's per-statement scratch
// B-trees cross that on every enrollment: each madvise is a TLB shootdown
// on every CPU, about 6 % of scep-ra's CPU under load. Up to 16 MiB per
// arena stays mapped for reuse instead.
void keepFreedMemoryMapped() {
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

using namespace scep;
using namespace scep::cli;

constexpr const char* kDefaultConfig = "/etc/kea-scep-ra/scep.toml";

const char* kUsage =
    "usage: scep-ra COMMAND [--config FILE] [options]\n"
    "\n"
    "  serve                          run the SCEP RA (creates CA and RA certificate on first "
    "start,\n"
    "                                 in an empty state-dir only)\n"
    "  init                           create deliberately what state-dir lacks: a new CA where "
    "none\n"
    "                                 is, or an empty database for an existing CA\n"
    "  backup DIR                     consistent online copy of database, keys and certificates\n"
    "  restore DIR                    put a backup back into state-dir (serve stopped); never\n"
    "                                 overwrites a key or a database\n"
    "  fingerprint [--digest D]       CA fingerprint for option 43 (sha1|sha256|sha384|sha512)\n"
    "  check-config                   validate the TOML file and exit\n"
    "  requests [--status S]          list requests (pending|issued|rejected)\n"
    "  approve ID                     issue the certificate of a pending request\n"
    "  reject ID --reason TEXT        reject a pending request\n"
    "  certs                          list issued certificates\n"
    "  revoke SERIAL [--reason R]     revoke (R: RFC 5280 reason name or number)\n"
    "  token create --name N --role R create an admin API token (viewer|approver); shown once\n"
    "  token list                     list admin API tokens (never their secrets)\n"
    "  token delete NAME              delete an admin API token\n"
    "\n"
    "  --config defaults to "
    "/etc/kea-scep-ra/scep.toml"
    "\n";

int run(const Arguments& args) {
    const Config config = loadConfig(args.option("config", kDefaultConfig));
    if (config.auth.allow_des) {
        enableSingleDes();  // before any thread starts: provider loading is not for busy processes
    }
    if (args.command == "check-config") {
        return checkConfig(config);
    }
    if (args.command == "serve") {
        keepFreedMemoryMapped();
        return serve(config);
    }
    if (args.command == "init") {
        return init(config);
    }
    if (args.command == "restore") {
        return restore(config, args);
    }
    CaMaterial state = bootstrapState(config, std::time(nullptr), Creation::none);
    if (args.command == "fingerprint") {
        return fingerprint(config, state, args);
    }
    requireDatabase(config);
    if (args.command == "backup") {
        return backup(config, args);
    }
    const auto store = openSqliteStore(stateFile(config, kDatabaseFile));
    return administer(config, state, *store, args);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Arguments args = parseArguments(argc, argv);
        if (args.command.empty() || args.command == "help" || args.options.count("help")) {
            std::cerr << kUsage;
            return args.command.empty() ? 2 : 0;
        }
        return run(args);
    } catch (const scep::ConfigError& e) {
        std::cerr << "scep-ra: configuration refused:\n" << e.what() << "\n";
        return 1;
    } catch (const scep::AdminError& e) {
        std::cerr << "scep-ra: " << e.what() << "\n";
        return e.kind() == scep::AdminError::Kind::not_found ? 3 : 4;
    } catch (const std::exception& e) {
        std::cerr << "scep-ra: " << e.what() << "\n";
        return 1;
    }
}
