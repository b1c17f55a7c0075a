#!/usr/bin/env python3
"""The size rules of CONTRIBUTING.md: no function over 80 lines and no file
over 600 lines, outside tests and generated code.

Reads C++ as text: strings, characters and comments are blanked, then every
brace block opened by a function head (a ')' possibly followed by
qualifiers, an initialiser list or a trailing return type) is measured from
the head's first line to its closing brace. Lambdas count as part of the
function that holds them, which is what a reader has to hold in mind too.

Usage: scripts/check-sizes.py [--list N]   (exit 1 when a rule is broken)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ("common", "hooks", "ra", "bench", "fuzz")
MAX_FUNCTION = 80
MAX_FILE = 600

# What may stand between a parameter list's ')' and the body's '{'.
HEAD_TAIL = re.compile(
    r"\)\s*(const|noexcept|override|final|mutable|->\s*[\w:<>,\s*&]+|\s)*"
    r"(:\s*[\w:]+\s*[({].*)?$", re.S)
CONTROL = re.compile(r"\b(if|for|while|switch|catch|do|else)\s*\(?[^;{}]*$")


def blank(text):
    """Comments, strings and character literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j, n) + 1 - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """(name, first line, line count) of every function body in `text`."""
    code = blank(text)
    stack, found = [], []
    for pos, c in enumerate(code):
        if c == "{":
            start = max(code.rfind(";", 0, pos), code.rfind("}", 0, pos),
                        code.rfind("{", 0, pos)) + 1
            head = code[start:pos]
            is_function = (HEAD_TAIL.search(head) and not CONTROL.search(head.strip())
                           and "=" not in head.split("(")[0]
                           and not any(f for f in stack if f[1]))
            name = re.findall(r"([~\w:]+)\s*\(", head)
            first = code.count("\n", 0, start + len(head) - len(head.lstrip())) + 1
            stack.append((first, bool(is_function and name), name[0] if name else ""))
        elif c == "}" and stack:
            first, is_function, name = stack.pop()
            if is_function:
                found.append((name, first, code.count("\n", 0, pos) + 2 - first))
    return found


def main():
    listing = int(sys.argv[sys.argv.index("--list") + 1]) if "--list" in sys.argv else 0
    broken, all_functions, all_files = [], [], []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".cc", ".h") or "regressions" in path.parts:
                continue
            rel = path.relative_to(ROOT)
            text = path.read_text(errors="replace")
            lines = text.count("\n")
            all_files.append((lines, str(rel)))
            if lines > MAX_FILE:
                broken.append(f"{rel}: {lines} lines (at most {MAX_FILE})")
            for name, first, length in functions(text):
                all_functions.append((length, f"{rel}:{first} {name}"))
                if length > MAX_FUNCTION:
                    broken.append(f"{rel}:{first}: {name} is {length} lines (at most {MAX_FUNCTION})")
    if listing:
        print(f"longest functions (of {len(all_functions)}):")
        for length, where in sorted(all_functions, reverse=True)[:listing]:
            print(f"  {length:4d}  {where}")
        print(f"longest files (of {len(all_files)}):")
        for lines, where in sorted(all_files, reverse=True)[:listing]:
            print(f"  {lines:4d}  {where}")
    for problem in broken:
        print(problem)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
