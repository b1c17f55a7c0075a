#!/usr/bin/env python3
"""hooks/mes_compile.py: the hook's message file compiles into what Kea's
kea-msg-compiler writes, and a malformed message file fails the build.
Usage: test_hook_messages.py MES_COMPILE.py SCEP_MESSAGES.mes"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

COMPILER = MESSAGES = None


def read(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def compile_mes(text_or_path, is_text=True):
    """Runs the compiler; returns (exit code, stderr, .h text, .cc text)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = text_or_path
        if is_text:
            source = os.path.join(tmp, "bad.mes")
            with open(source, "w") as f:
                f.write(text_or_path)
        out_h, out_cc = os.path.join(tmp, "m.h"), os.path.join(tmp, "m.cc")
        proc = subprocess.run([sys.executable, COMPILER, source, out_h, out_cc],
                              capture_output=True, text=True)
        return proc.returncode, proc.stderr, read(out_h), read(out_cc)


GOOD = """# comment
$NAMESPACE isc::demo

% DEMO_B second "quoted" %1
Description of B.

% DEMO_A first
Description of A.
"""


class GeneratedCode(unittest.TestCase):
    def test_layout_matches_kea_msg_compiler(self):
        code, err, h, cc = compile_mes(GOOD)
        self.assertEqual(code, 0, err)
        # IDs sorted, declared in the namespace, as Kea's generated headers are.
        self.assertIn("#ifndef M_H\n#define M_H\n\n#include <log/message_types.h>\n\n"
                      "namespace isc {\nnamespace demo {\n\n"
                      "extern const isc::log::MessageID DEMO_A;\n"
                      "extern const isc::log::MessageID DEMO_B;\n\n"
                      "} // namespace demo\n} // namespace isc\n\n#endif // M_H\n", h)
        self.assertIn('extern const isc::log::MessageID DEMO_A = "DEMO_A";\n', cc)
        self.assertIn('const char* values[] = {\n'
                      '    "DEMO_A", "first",\n'
                      '    "DEMO_B", "second \\"quoted\\" %1",\n'
                      '    NULL\n};\n\n'
                      'const isc::log::MessageInitializer initializer(values);\n', cc)

    def test_the_hooks_messages_compile(self):
        code, err, h, cc = compile_mes(MESSAGES, is_text=False)
        self.assertEqual(code, 0, err)
        ids = re.findall(r"^% (\w+) ", read(MESSAGES), re.M)
        self.assertGreaterEqual(len(ids), 13)
        for ident in ids:
            self.assertIn(f"extern const isc::log::MessageID {ident};", h)
            self.assertIn(f'    "{ident}", "', cc)
        self.assertIn("namespace scep {\nnamespace hook {", h)


class MalformedFilesAreRefused(unittest.TestCase):
    def refused(self, text, reason):
        code, err, h, cc = compile_mes(text)
        self.assertNotEqual(code, 0)
        self.assertIn("bad.mes:", err)
        self.assertIn(reason, err)
        self.assertIsNone(h)
        self.assertIsNone(cc)

    def test_duplicate_id(self):
        self.refused("% DEMO_A one\n\n% DEMO_A two\n", "duplicate message ID DEMO_A")

    def test_missing_text(self):
        self.refused("% DEMO_A one\n% DEMO_B   \n", "message DEMO_B has no text")

    def test_bad_id(self):
        self.refused("% DEMO-A one\n", "bad message ID 'DEMO-A'")
        self.refused("% 1DEMO one\n", "bad message ID '1DEMO'")

    def test_missing_id(self):
        self.refused("%\n", "no message ID")

    def test_bad_namespace_and_directives(self):
        self.refused("$NAMESPACE isc::1x\n% DEMO_A one\n", "$NAMESPACE needs")
        self.refused("$NAMESPACE a\n$NAMESPACE b\n% DEMO_A one\n", "given twice")
        self.refused("$PREFIX X_\n% DEMO_A one\n", "unknown directive '$PREFIX'")

    def test_no_messages(self):
        self.refused("# nothing\n", "no messages")


if __name__ == "__main__":
    COMPILER, MESSAGES = sys.argv[1], sys.argv[2]
    sys.exit(unittest.main(argv=sys.argv[:1], exit=False).result.wasSuccessful() is False)
