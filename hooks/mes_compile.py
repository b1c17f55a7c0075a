#!/usr/bin/env python3
"""Compiles a Kea message file (.mes) into the .h and .cc that Kea's own
kea-msg-compiler writes, which Debian's kea-dev does not ship. Usage:
    mes_compile.py MESSAGES.mes OUT.h OUT.cc
The .h declares each ID as `extern const isc::log::MessageID`, the .cc
defines them and registers the texts with isc::log::MessageInitializer.
A malformed file (bad or duplicate ID, missing text, unknown directive)
fails with FILE:LINE: reason and writes nothing."""
import os
import re
import sys

SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class MesError(Exception):
    pass


def parse_namespace(value, where):
    parts = value.split("::") if value else []
    if value.startswith("::"):
        parts = parts[1:]  # Kea accepts a leading global-scope "::"
    if not parts or not all(SYMBOL.match(p) for p in parts):
        raise MesError(f"{where}: $NAMESPACE needs a C++ namespace such as isc::dhcp, "
                       f"got '{value}'")
    return parts


def parse_directive(line, where, namespace):
    words = line.split()
    if words[0] != "$NAMESPACE":
        raise MesError(f"{where}: unknown directive '{words[0]}' (only $NAMESPACE is supported)")
    if namespace is not None:
        raise MesError(f"{where}: $NAMESPACE given twice")
    if len(words) != 2:
        raise MesError(f"{where}: $NAMESPACE takes exactly one argument")
    return parse_namespace(words[1], where)


def parse_message(line, where, messages):
    fields = line[1:].strip().split(None, 1)
    if not fields:
        raise MesError(f"{where}: '%' line has no message ID")
    ident = fields[0]
    if not SYMBOL.match(ident):
        raise MesError(f"{where}: bad message ID '{ident}' (letters, digits and '_', "
                       "not starting with a digit)")
    if len(fields) < 2 or not fields[1].strip():
        raise MesError(f"{where}: message {ident} has no text")
    text = fields[1].strip()
    if "\\" in text:
        raise MesError(f"{where}: message {ident}: a backslash cannot be carried into C++")
    if ident in messages:
        raise MesError(f"{where}: duplicate message ID {ident} (first at line "
                       f"{messages[ident][1]})")
    messages[ident] = (text, where.rsplit(":", 1)[1])


def parse(path):
    """Returns (namespace parts, {id: text}); lines other than directives and
    '%' lines are comments or descriptions, as in Kea's MessageReader."""
    namespace, messages = None, {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            where = f"{path}:{number}"
            if line.startswith("$"):
                namespace = parse_directive(line, where, namespace)
            elif line.startswith("%"):
                parse_message(line, where, messages)
    if not messages:
        raise MesError(f"{path}: no messages ('% ID text' lines)")
    return namespace or [], {ident: text for ident, (text, _) in messages.items()}


def guarded(lines, namespace):
    opening = [f"namespace {part} {{" for part in namespace]
    closing = [f"}} // namespace {part}" for part in reversed(namespace)]
    if not namespace:
        return lines
    return opening + [""] + lines + [""] + closing


def header(source, out, namespace, messages):
    guard = re.sub(r"[^A-Za-z0-9]", "_", os.path.basename(out)).upper()
    decls = [f"extern const isc::log::MessageID {ident};" for ident in sorted(messages)]
    return "\n".join([f"// File created from {source}", "", f"#ifndef {guard}",
                      f"#define {guard}", "", "#include <log/message_types.h>", ""] +
                     guarded(decls, namespace) + ["", f"#endif // {guard}", ""])


def program(source, namespace, messages):
    defs = [f'extern const isc::log::MessageID {ident} = "{ident}";' for ident in sorted(messages)]
    values = ['    "{}", "{}",'.format(ident, messages[ident].replace('"', '\\"'))
              for ident in sorted(messages)]
    return "\n".join([f"// File created from {source}", "", "#include <cstddef>",
                      "#include <log/message_types.h>", "#include <log/message_initializer.h>",
                      ""] + guarded(defs, namespace) +
                     ["", "namespace {", "", "const char* values[] = {"] + values +
                     ["    NULL", "};", "", "const isc::log::MessageInitializer initializer(values);",
                      "", "} // Anonymous namespace", "", ""])


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    source, out_h, out_cc = argv[1:]
    try:
        namespace, messages = parse(source)
    except (MesError, OSError, UnicodeDecodeError) as e:
        sys.exit(f"mes_compile: {e}")
    with open(out_h, "w") as f:
        f.write(header(source, out_h, namespace, messages))
    with open(out_cc, "w") as f:
        f.write(program(source, namespace, messages))


if __name__ == "__main__":
    main(sys.argv)
