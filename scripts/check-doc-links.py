#!/usr/bin/env python3
"""Every relative link in README.md and docs/**/*.md leads somewhere: the file
or directory exists, and a #fragment names a heading of the target page
(GitHub's rule: lower case, punctuation other than '-' and '_' dropped, spaces
to '-', repeats numbered -1, -2, ...). Links with a scheme (https:, mailto:)
are not followed. Prints each broken link as FILE: LINK: why; exit 1 if any.
    python3 scripts/check-doc-links.py [REPO_ROOT]"""
import os
import re
import sys

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose_lines(path):
    """The lines of a page outside fenced blocks, with inline code removed."""
    out, fence = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = FENCE.match(line)
            if m:
                if fence is None:
                    fence = m.group(1)
                elif line.strip().startswith(fence):
                    fence = None
                continue
            if fence is None:
                out.append(re.sub(r"`[^`]*`", "", line))
    return out


def anchors(path):
    seen, out = {}, set()
    with open(path, encoding="utf-8") as f:
        fence = None
        for line in f:
            m = FENCE.match(line)
            if m:
                fence = None if fence else m.group(1)
                continue
            if fence:
                continue
            h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not h:
                continue
            slug = re.sub(r"[^\w\- ]", "", h.group(1).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    os.chdir(root)
    files = ["README.md"] if os.path.isfile("README.md") else []
    for d, _, names in sorted(os.walk("docs")):
        files += sorted(os.path.join(d, n) for n in names if n.endswith(".md"))
    if not files:
        print(f"check-doc-links: no README.md or docs/*.md under {root}", file=sys.stderr)
        return 1
    bad = links = 0
    for f in files:
        for line in prose_lines(f):
            for link in LINK.findall(line):
                if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", link):
                    continue
                links += 1
                path, _, frag = link.partition("#")
                target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
                if not os.path.exists(target):
                    print(f"{f}: {link}: no such file {target}", file=sys.stderr)
                    bad += 1
                elif frag and target.endswith(".md") and frag not in anchors(target):
                    print(f"{f}: {link}: {target} has no heading #{frag}", file=sys.stderr)
                    bad += 1
    if bad:
        print(f"check-doc-links: {bad} broken links", file=sys.stderr)
        return 1
    print(f"check-doc-links: {links} relative links in {len(files)} files, all lead somewhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
