#!/usr/bin/python3
"""tests/compile/layout.py [HEADER] - one map for tlsmail.h.

The doc block's API index lists every public name under a [group]; the
declarations are headed "/* ---- [group] ..." and the implementation
"/* ==== [tlsmail:group] ...". Exit 0 when the three agree: every public
function and type is in the index under the group whose heading declares
it, every public function is defined under that group's marker, nothing is
indexed that does not exist, and the index's "Inside, bottom up" list is
the order of the markers. Otherwise print each disagreement, exit 1."""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "tlsmail.h"
src = open(path).read()
problems = []

doc = src[:src.index("*/")]
api = doc[doc.index("\nAPI ("):]
api = api[:api.index("\nERRORS")]
index, group = {}, None
for line in api.split("\n"):
    m = re.match(r"^   \[(\w+)\]\s+(.*)$", line)
    if m:
        group = m.group(1)
        rest = m.group(2)
    elif group and re.match(r"^ {16}\S", line):
        rest = line
    else:
        group = None if not line.startswith(" " * 16) else group
        continue
    for name in re.findall(r"\btlsmail_\w+", rest):
        if name in index:
            problems.append("index: %s listed twice" % name)
        index[name] = group
inside = re.search(r"Inside, bottom up:(.*?)\.\n", api, re.S)
inside = re.findall(r"\[(\w+)\]", inside.group(1)) if inside else []

SEP = "/* ========================== API ends here"
decl_part = src[:src.index(SEP)]
impl_part = src[src.index(SEP):]


def sections(text, pattern):
    """(group, text) for each heading matching pattern."""
    out = []
    marks = [(m.start(), m.group(1)) for m in re.finditer(pattern, text, re.M)]
    for i, (pos, g) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        out.append((g, text[pos:end]))
    return out


declared = {}
for g, text in sections(decl_part, r"^/\* ---- \[(\w+)\]"):
    for name in re.findall(r"^TLSMAIL_DEF[^;{]*?\b(tlsmail_\w+)\s*\(", text, re.M | re.S):
        declared[name] = g
    for name in re.findall(r"^struct (tlsmail_[a-z]\w*) \{", text, re.M):
        declared.setdefault(name, g)
    for name in re.findall(r"^typedef struct (tlsmail_[a-z]\w*) \{", text, re.M):
        declared.setdefault(name, g)
# a public struct defined with the private ones belongs to the group that
# declares its functions' argument type: it must be indexed by name anyway
private_defined = set(re.findall(r"^struct (tlsmail_[a-z]\w*) \{", dict(
    sections(decl_part, r"^/\* ---- \[(\w+)\]")).get("private", ""), re.M))

defined, markers = {}, []
for g, text in sections(impl_part, r"^/\* ==== \[tlsmail:(\w+)\]"):
    markers.append(g)
    for name in re.findall(r"^TLSMAIL_DEF[^;{]*?\b(tlsmail_[a-z]\w*)\s*\([^;]*?\)\s*\{", text, re.M | re.S):
        defined[name] = g

functions = {n for n in declared if n not in private_defined and
             re.search(r"^TLSMAIL_DEF[^;{]*?\b%s\s*\(" % n, decl_part, re.M | re.S)}
for n, g in sorted(declared.items()):
    if g == "private":
        continue
    if n not in index:
        problems.append("%s is declared under [%s] but not in the API index" % (n, g))
    elif index[n] != g:
        problems.append("%s: index says [%s], declaration heading [%s]" % (n, index[n], g))
for n in sorted(private_defined):
    if n not in index:
        problems.append("%s (defined with the private structs) is not in the API index" % n)
for n, g in sorted(index.items()):
    if n not in declared and n not in private_defined:
        problems.append("index lists %s under [%s]: no such public function or type" % (n, g))
for n in sorted(functions):
    if n not in defined:
        problems.append("%s is declared but defined under no marker" % n)
    elif defined[n] != declared[n]:
        problems.append("%s: declared under [%s], defined under [tlsmail:%s]" % (n, declared[n], defined[n]))
if inside != markers:
    problems.append("index 'Inside, bottom up' %s != markers %s" % (inside, markers))
for p in problems:
    print(p)
print("layout: %d public names, %d groups, %d markers: %s" % (
    len(index), len(set(index.values())), len(markers), "ok" if not problems else "%d problems" % len(problems)))
sys.exit(1 if problems else 0)
