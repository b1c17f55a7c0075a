#!/usr/bin/env python3
"""Sorts `perf script` samples of scep-ra into the buckets of issue 11's table.

Reads the output of `perf script -F comm,tid,period,ip,sym,dso` (with call
chains) and prints, per bucket, the samples, their share and that share of
scep-ra's CPU time per enrollment (--cpu-ms, from scep_load's RESULT line).

Each sample goes to the first rule of RULES that matches its call chain
(innermost frame first). Rules are inclusive: "RSA private" takes every
sample under BN_mod_exp_mont_consttime or EVP_PKEY_sign, wherever its leaf
is. Order matters, and is the table's: a malloc under d2i_X509 is ASN.1, a
malloc no earlier rule claims is "malloc". Debian's libcrypto has no debug
symbols, so its internal functions show as addresses; the rules name the
exported functions that call them.
"""

import argparse
import collections
import re
import sys

KERNEL = "[kernel.kallsyms]"

# (bucket, kind, pattern, extra)
#   chain  some frame's symbol matches pattern (and, if extra, another frame's
#          symbol matches extra)
#   dso    some frame lies in a library whose path matches pattern
#   own    the innermost frame in the scep-ra executable matches pattern
#   leaf   the innermost frame's symbol matches pattern
#   kernel the leaf is in the kernel and some frame's symbol matches pattern
RULES = [
    ("lock contention (futex)", "chain",
     r"^(__lll_lock_wait|__lll_lock_wake|futex_wait|futex_wake|do_futex|__x64_sys_futex)", None),
    ("SQLite fsync", "chain", r"^((__libc_)?f(data)?sync|__x64_sys_f(data)?sync|do_fsync)$", None),
    ("SQLite pwrite", "chain", r"^((__libc_|__)?pwrite(64)?|__x64_sys_pwrite64|ksys_pwrite64)$", None),
    ("SQLite user (and pread)", "dso", r"/libsqlite3\.so", None),
    # scep-ra parses the CSR with ASN1_item_d2i_ex in requestFromDer (ra/crypto.cc).
    ("DECODER: CSR", "chain", r"^(OSSL_DECODER_|ossl_decoder)",
     r"^(d2i_X509_REQ|X509_REQ_|scep::requestFromDer)"),
    ("DECODER: CMS signer cert", "chain", r"^(OSSL_DECODER_|ossl_decoder)",
     r"^(d2i_CMS|d2i_PKCS7|CMS_|PKCS7_|d2i_X509$|d2i_X509_AUX)"),
    ("DECODER: other", "chain", r"^(OSSL_DECODER_|ossl_decoder)", None),
    ("RSA private", "chain",
     r"^(BN_mod_exp_mont_consttime|RSA_private_(en|de)crypt$|RSA_sign$|EVP_PKEY_sign$|"
     r"EVP_PKEY_decrypt$|EVP_DigestSign(Final)?$|ossl_rsa_.*private)", None),
    ("RSA public", "chain",
     r"^(BN_mod_exp_mont$|RSA_public_(en|de)crypt$|RSA_verify$|EVP_PKEY_verify(_recover)?$|"
     r"EVP_PKEY_encrypt$|EVP_DigestVerify(Final)?$)", None),
    ("JSON logging", "chain", r"^(scep::EventLog::|nlohmann::)", None),
    ("ASN.1 parse/free + encode", "chain", r"^(ASN1_|asn1_|d2i_|i2d_|OBJ_)", None),
    ("CMS build/parse", "chain", r"^(CMS_|cms_|PKCS7_|SMIME_|PEM_)", None),
    ("X.509 chain/extensions", "chain", r"^(X509_verify_cert|X509_STORE_|X509V3_|X509_check_|X509v3_|X509_get_ext)",
     None),
    ("HTTP kernel", "kernel",
     r"^(__x64_sys_(sendto|recvfrom|sendmsg|recvmsg|read|write|writev|accept4?|epoll_wait|epoll_ctl|"
     r"shutdown|close|setsockopt|getsockopt|getpeername|getsockname)|tcp_|sock_|inet_|__sys_|ip_)", None),
    ("kernel other", "leaf_dso", re.escape(KERNEL), None),
    ("malloc", "leaf",
     r"^(malloc|free|cfree|calloc|realloc|_int_malloc|_int_free|malloc_consolidate|tcache_|"
     r"__libc_malloc|__libc_free|__libc_calloc|__libc_realloc|operator new|operator delete|"
     r"CRYPTO_malloc|CRYPTO_zalloc|CRYPTO_free|CRYPTO_clear_free|unlink_chunk|arena_get2)", None),
    ("HTTP user", "own", r"^(scep::http::|boost::asio::|boost::beast::)", None),
]

# Rows the issue groups as "the rest".
REST = {"lock contention (futex)", "X.509 chain/extensions", "kernel other", "malloc", "other"}


def compile_rules():
    return [(name, kind, re.compile(pattern), re.compile(extra) if extra else None)
            for name, kind, pattern, extra in RULES]


def read_samples(stream):
    """Yields (period, [(symbol, dso), ...] innermost first) per sample."""
    period, frames = None, []
    frame_re = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    for line in stream:
        if not line.strip():
            if period is not None:
                yield period, frames
            period, frames = None, []
        elif line[0] in " \t":
            m = frame_re.match(line)
            if m:
                # glibc's internal aliases: __GI___lll_lock_wait is __lll_lock_wait
                symbol = re.sub(r"^__GI_", "", re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)))
                frames.append((symbol, m.group(2)))
        else:
            fields = line.split()
            period = next((int(f) for f in fields[2:] if f.isdigit()), 1)
    if period is not None:
        yield period, frames


def matches(rule, frames, executable):
    _, kind, pattern, extra = rule
    symbols = [s for s, _ in frames]
    if kind == "chain":
        return any(pattern.search(s) for s in symbols) and \
            (extra is None or any(extra.search(s) for s in symbols))
    if kind == "dso":
        return any(pattern.search(d) for _, d in frames)
    if kind == "leaf":
        return bool(frames) and bool(pattern.search(frames[0][0]))
    if kind == "leaf_dso":
        return bool(frames) and bool(pattern.search(frames[0][1]))
    if kind == "kernel":
        return bool(frames) and frames[0][1] == KERNEL and any(pattern.search(s) for s in symbols)
    if kind == "own":
        own = next((s for s, d in frames if d.endswith(executable)), None)
        return own is not None and bool(pattern.search(own))
    raise ValueError("unknown rule kind " + kind)


def classify(frames, rules, executable):
    for rule in rules:
        if matches(rule, frames, executable):
            return rule[0]
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="perf script output")
    parser.add_argument("--cpu-ms", type=float, required=True,
                        help="scep-ra CPU milliseconds per enrollment")
    parser.add_argument("--floor-us", type=float, default=0,
                        help="3 RSA-2048 private-key operations, in us (openssl speed)")
    parser.add_argument("--executable", default="/scep-ra")
    parser.add_argument("--top", type=int, default=0,
                        help="also list the N heaviest leaf symbols of the 'other' bucket")
    args = parser.parse_args()

    rules = compile_rules()
    totals = collections.Counter()
    leaves = collections.Counter()
    samples = 0
    with open(args.script, errors="replace") as stream:
        for period, frames in read_samples(stream):
            bucket = classify(frames, rules, args.executable)
            totals[bucket] += period
            samples += 1
            if bucket == "other" and frames:
                leaves["%s (%s)" % (frames[0][0], frames[0][1].rsplit("/", 1)[-1])] += period
    grand = sum(totals.values())
    if not grand:
        sys.exit("profile_buckets: no samples in " + args.script)
    cpu_us = 1000 * args.cpu_ms
    print("== where scep-ra's CPU goes: %d samples, %.0f us CPU per enrollment" % (samples, cpu_us)
          + (" = %.2f x floor (%.0f us)" % (cpu_us / args.floor_us, args.floor_us) if args.floor_us else ""))
    print("   %-28s %8s %12s" % ("bucket", "share", "us/enroll"))
    order = [name for name, *_ in RULES] + ["other"]
    for name in order:
        if name in REST:
            continue
        share = totals[name] / grand
        print("   %-28s %7.1f%% %12.0f" % (name, 100 * share, share * cpu_us))
    rest = sum(totals[n] for n in REST) / grand
    print("   %-28s %7.1f%% %12.0f" % ("the rest:", 100 * rest, rest * cpu_us))
    for name in order:
        if name in REST:
            share = totals[name] / grand
            print("     %-26s %7.1f%% %12.0f" % (name, 100 * share, share * cpu_us))
    if args.top:
        print("   heaviest leaves of 'other':")
        for leaf, period in leaves.most_common(args.top):
            print("     %7.1f%%  %s" % (100 * period / grand, leaf))


if __name__ == "__main__":
    main()
