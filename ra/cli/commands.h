// scep-ra's commands; main.cc parses the command line and dispatches here.
// Each returns the process exit code; errors are thrown (main.cc maps them).
#pragma once

#include <iosfwd>
#include <string>

#include <openssl/x509.h>

#include "ra/ca/bootstrap.h"
#include "ra/cli/arguments.h"
#include "ra/config.h"
#include "ra/store/store.h"

namespace scep::cli {

// serve.cc: the SCEP and admin listeners until SIGINT/SIGTERM.
int serve(const Config& config);

// state_commands.cc: what creates, copies, restores and shows the CA's state.
int init(const Config& config);
int restore(const Config& config, const Arguments& args);
int backup(const Config& config, const Arguments& args);
int fingerprint(const Config& config, const CaMaterial& state, const Arguments& args);
int checkConfig(const Config& config);

// admin_commands.cc: the operator's side of the admin API, on the database.
// requests, certs, approve, reject, revoke.
int administer(const Config& config, CaMaterial& material, Store& store, const Arguments& args);

// support.cc
void printFingerprints(X509& ca, std::ostream& out);
std::string operatorName();  // "cli:<user>", the actor of what the CLI does
std::string utc(std::int64_t when);

}  // namespace scep::cli
