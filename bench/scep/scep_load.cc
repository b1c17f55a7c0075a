// scep_load: SCEP enrollment load generator for bench/scep/enroll-bench.sh.
//
// Everything expensive on the client side happens OUTSIDE the timed window:
//   before: GetCACert, a pool of RSA-2048 CSR keys, one CSR per pool key,
//           (challenge mode) one self-signed signer per pool key, and every
//           pkiMessage fully built (signed + enveloped), each with its own
//           random transactionID and senderNonce;
//   timed:  C threads, each with its own keep-alive cpp-httplib connection,
//           POST ?operation=PKIOperation with the prebuilt bytes; only the
//           latency and the reply bytes are recorded;
//   after:  every reply is checked (signature by the RA/CA certificate,
//           SUCCESS, transactionID, recipientNonce, envelope decrypted with
//           openCertRep, certificate key == CSR key, serials distinct).
// A failed check makes the exit status non-zero.
//
// Modes of request signing:
//   --mic CERT,KEY   (repeatable) MIC-signed PKCSReq, CSR CN = MIC CN, no
//                    challengePassword (scep-ra's MIC authentication)
//   --challenge PW   self-signed signer per pool key + challengePassword in
//                    the CSR (micromdm scepserver; scep-ra also accepts it)
//
// With --server-pid, the server's utime+stime (/proc/PID/stat) is read just
// before the first and just after the last timed request.
//
// Output: human-readable lines, then one machine-readable line
//   RESULT key=value ...
//
// Files: load_options (the command line), load_client (requests, the timed
// window, checks), load_report (what is printed and the exit status).
#include <exception>
#include <iostream>

#include "bench/scep/load_client.h"
#include "bench/scep/load_options.h"
#include "bench/scep/load_report.h"

int main(int argc, char** argv) {
    using namespace scep::bench;
    const Options opt = parseOptions(argc, argv);
    try {
        const scep::X509Ptr ra_cert = fetchRecipient(opt.target);
        printRecipient(*ra_cert);
        Requests requests = prepareRequests(opt, *ra_cert);
        printPreparation(opt, requests);
        const Window window = runLoad(opt, requests.jobs);
        const Replies replies = checkReplies(opt, requests, *ra_cert);
        return report(opt, requests.jobs, window, replies);
    } catch (const std::exception& e) {
        std::cerr << "scep_load: " << e.what() << "\n";
        return 2;
    }
}
