// scep-ra's command line (ra/cli/arguments.h): options, request IDs and
// revocation reasons as the CLI reads them.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "ra/admin/revocation.h"
#include "ra/cli/arguments.h"

using namespace scep;
using namespace scep::cli;

namespace {

Arguments parse(std::vector<const char*> words) {
    words.insert(words.begin(), "scep-ra");
    return parseArguments(static_cast<int>(words.size()), const_cast<char**>(words.data()));
}

}  // namespace

TEST_CASE("cli: command, positional words, --name value and --name=value") {
    const Arguments args = parse({"revoke", "0A1B", "--reason", "superseded", "--config=/x.toml"});
    CHECK(args.command == "revoke");
    CHECK(args.positional == std::vector<std::string>{"0A1B"});
    CHECK(args.option("reason") == "superseded");
    CHECK(args.option("config") == "/x.toml");
    CHECK(args.option("digest", "sha256") == "sha256");
    CHECK_THROWS_AS(parse({"approve", "--reason"}), std::invalid_argument);
}

TEST_CASE("cli: one request ID of up to 18 digits") {
    CHECK(requestId(parse({"approve", "42"})) == 42);
    for (const std::vector<const char*>& bad : {std::vector<const char*>{"approve"},
                                                {"approve", "1", "2"},
                                                {"approve", "-1"},
                                                {"approve", "x"},
                                                {"approve", "9999999999999999999"}}) {
        CHECK_THROWS_AS(requestId(parse(bad)), std::invalid_argument);
    }
}

TEST_CASE("cli: revocation reasons come from the API's table") {
    for (const RevocationReason& reason : revocationReasons()) {
        CAPTURE(reason.name);
        CHECK(reasonCode(reason.name) == reason.code);
    }
    CHECK(reasonCode("4") == 4);
    CHECK(reasonCode("7") == 7);  // a number is passed on; revoke refuses 7
    for (const char* bad : {"KeyCompromise", "", "100", "-1", "lost"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(reasonCode(bad), std::invalid_argument);
    }
}
