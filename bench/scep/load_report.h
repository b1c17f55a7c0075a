// scep_load's output: human-readable lines, then the machine-readable
//   RESULT key=value ...
// line that enroll-bench.sh reads.
#pragma once

#include <vector>

#include "bench/scep/load_client.h"
#include "bench/scep/load_options.h"

namespace scep::bench {

void printRecipient(const X509& ra_cert);
void printPreparation(const Options& opt, const Requests& requests);
// Prints the failures and duplicate serials (stderr), the figures of the
// timed window and the RESULT line; returns the exit status: 0 when every
// reply checked out, or when failures are tolerated and some succeeded.
int report(const Options& opt, const std::vector<Job>& jobs, const Window& window,
           const Replies& replies);

}  // namespace scep::bench
