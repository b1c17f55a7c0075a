#!/usr/bin/env python3
"""Checks profile_buckets.py's rules on hand-written `perf script` samples.

    python3 bench/scep/test_profile_buckets.py
"""

import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import profile_buckets as pb  # noqa: E402

CRYPTO = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
SQLITE = "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6"
RA = "/work/build/ra/scep-ra"
KERNEL = "[kernel.kallsyms]"


def sample(*frames, period=500250):
    """A perf script sample, innermost frame first, as (symbol, dso) pairs."""
    lines = ["scep-ra 31566     %d " % period]
    lines += ["\t    %x %s+0x1a (%s)" % (0x1000 + i, s, d) for i, (s, d) in enumerate(frames)]
    return "\n".join(lines) + "\n\n"


def bucket(*frames):
    (_, parsed), = pb.read_samples(io.StringIO(sample(*frames)))
    return pb.classify(parsed, pb.compile_rules(), "/scep-ra")


class RulesTest(unittest.TestCase):
    def test_bignum_under_sign_is_rsa_private(self):
        self.assertEqual(bucket(("[unknown]", CRYPTO), ("BN_mod_exp_mont_consttime", CRYPTO),
                                ("EVP_PKEY_sign", CRYPTO), ("scep::signCertificate", RA)),
                         "RSA private")

    def test_public_exponentiation_is_rsa_public(self):
        self.assertEqual(bucket(("[unknown]", CRYPTO), ("BN_mod_exp_mont", CRYPTO),
                                ("EVP_PKEY_verify", CRYPTO)), "RSA public")

    def test_decoder_is_split_by_caller(self):
        decoder = ("OSSL_DECODER_CTX_new_for_pkey", CRYPTO)
        self.assertEqual(bucket(decoder, ("ASN1_item_d2i_ex", CRYPTO), ("scep::requestFromDer", RA)),
                         "DECODER: CSR")
        self.assertEqual(bucket(decoder, ("ASN1_item_d2i_ex", CRYPTO), ("d2i_CMS_ContentInfo", CRYPTO),
                                ("scep::pki::decodeCms", RA)), "DECODER: CMS signer cert")

    def test_malloc_under_a_library_bucket_stays_there(self):
        self.assertEqual(bucket(("_int_malloc", LIBC), ("CRYPTO_malloc", CRYPTO), ("d2i_X509", CRYPTO)),
                         "ASN.1 parse/free + encode")
        self.assertEqual(bucket(("_int_malloc", LIBC), ("scep::Responder::answer", RA)), "malloc")

    def test_sqlite_io_by_glibc_wrapper_or_kernel_frame(self):
        self.assertEqual(bucket(("pvm_irq_enable", KERNEL), ("__libc_pwrite", LIBC),
                                ("[unknown]", SQLITE)), "SQLite pwrite")
        self.assertEqual(bucket(("ext4_sync_file", KERNEL), ("__x64_sys_fdatasync", KERNEL),
                                ("__GI_fdatasync", LIBC), ("[unknown]", SQLITE)), "SQLite fsync")
        self.assertEqual(bucket(("sqlite3VdbeExec", SQLITE), ("scep::sqlite::Query::step", RA)),
                         "SQLite user (and pread)")

    def test_glibc_lock_alias_is_contention(self):
        self.assertEqual(bucket(("__GI___lll_lock_wait", LIBC), ("scep::Store::lock", RA)),
                         "lock contention (futex)")

    def test_http_kernel_and_user(self):
        self.assertEqual(bucket(("tcp_sendmsg", KERNEL), ("__x64_sys_sendto", KERNEL), ("__send", LIBC),
                                ("scep::http::Connection::write", RA)), "HTTP kernel")
        self.assertEqual(bucket(("__memmove_avx512_unaligned_erms", LIBC),
                                ("boost::beast::http::basic_parser::put", RA)), "HTTP user")

    def test_unclaimed_code_is_other(self):
        self.assertEqual(bucket(("scep::inspectCsr", RA)), "other")

    def test_period_is_read_from_the_header(self):
        (period, frames), = pb.read_samples(io.StringIO(sample(("f", RA), period=1234)))
        self.assertEqual((period, frames), (1234, [("f", RA)]))


if __name__ == "__main__":
    unittest.main()
