#!/usr/bin/env bash
# Runs clang-tidy with the repository's .clang-tidy over every translation unit
# of the repository in the build's compile_commands.json (src/, tests/, bench/;
# not the generated files under the build directory), in parallel, prints each
# finding once and exits 1 if there is any (docs/testing.md, "Coding standard"):
#   bash scripts/tidy.sh [--no-cache] [-j N] [PATH_PREFIX...]
# BUILD_DIR (default build) must hold a build made by scripts/build.sh: its
# compile_commands.json, and the compiler's dependency files (-MD) that name
# every header each translation unit includes.
#
# A clean result is cached, like ccache caches the compiler's output, in
# ADS_TIDY_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ads-clang-tidy),
# outside the clone, so that every clone on the machine shares it. The key is
# the sha256 of clang-tidy's version, .clang-tidy, the compile command (paths
# relative to the source and build directories, the output file left out) and
# the contents of every file the translation unit includes (from its dependency
# file). A translation unit with a finding is never cached; one whose
# dependency file is missing or older than a file it lists (sources changed
# since the last build) is checked without the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
command -v "$CLANG_TIDY" >/dev/null || { echo "ads: $CLANG_TIDY not found; run scripts/install-deps.sh" >&2; exit 2; }
command -v python3 >/dev/null || { echo "ads: python3 not found; run scripts/install-deps.sh" >&2; exit 2; }
export CLANG_TIDY BUILD_DIR=${BUILD_DIR:-build}
export ADS_TIDY_CACHE=${ADS_TIDY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ads-clang-tidy}
exec python3 - "$@" <<'PY'
import argparse, concurrent.futures, hashlib, json, os, re, shlex, subprocess, sys, tempfile, time

CACHE_FORMAT = "ads-clang-tidy 1"  # change when the key or the way clang-tidy runs changes
start = time.monotonic()
ap = argparse.ArgumentParser(prog="scripts/tidy.sh")
ap.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
ap.add_argument("-j", type=int, default=os.cpu_count() or 1, help="parallel clang-tidy processes (default: nproc)")
ap.add_argument("paths", nargs="*", help="only the translation units under these paths (relative to the repository)")
args = ap.parse_args()

tidy = os.environ["CLANG_TIDY"]
src_dir = os.getcwd()
build_dir = os.path.realpath(os.environ["BUILD_DIR"])
db_path = os.path.join(build_dir, "compile_commands.json")
if not os.path.isfile(db_path):
    sys.exit(f"ads: {db_path} not found; build first (bash scripts/build.sh)")
cache_dir = None if args.no_cache else os.environ["ADS_TIDY_CACHE"]


def rel(path):
    """The path as a key part: below the build or source directory, relative to it."""
    path = os.path.normpath(path)
    for root, name in ((build_dir, "@BUILD@"), (src_dir, "@SRC@")):
        if path == root or path.startswith(root + os.sep):
            return name + path[len(root):]
    return path


def normalize(text):
    return text.replace(build_dir, "@BUILD@").replace(src_dir, "@SRC@")


digests = {}  # path -> sha256 of its contents, each file read once per run


def file_digest(path):
    if path not in digests:
        with open(path, "rb") as f:
            digests[path] = hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") \
                else hashlib.sha256(f.read()).hexdigest()
    return digests[path]


def read_depfile(path):
    """The prerequisites of the first rule of a Make dependency file (GCC -MD)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read().replace("\\\n", " ")
    rule = text.split("\n", 1)[0]
    _, sep, deps = rule.partition(": ")
    if not sep:
        return None
    deps = deps.replace("$$", "$")
    return [d.replace("\\ ", " ") for d in re.findall(r"(?:\\ |[^ ])+", deps)]


version = subprocess.run([tidy, "--version"], capture_output=True, text=True, check=True).stdout
with open(".clang-tidy", "rb") as f:
    config = f.read()
common = hashlib.sha256()
for part in (CACHE_FORMAT.encode(), version.encode(), config):
    common.update(len(part).to_bytes(8, "little") + part)


class Unit:
    def __init__(self, entry):
        self.dir = entry["directory"]
        self.file = os.path.normpath(os.path.join(self.dir, entry["file"]))
        argv = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        # the compiler's flags for clang-tidy: no compiler, no -c, no output file, no source file
        self.flags, output, depfile, i = [], None, None, 1
        while i < len(argv):
            a = argv[i]
            if a in ("-o", "-MF", "-MT", "-MQ") and i + 1 < len(argv):
                if a == "-o": output = argv[i + 1]
                if a == "-MF": depfile = argv[i + 1]
                i += 2
                continue
            # -Werror left out: the compiler's warnings are findings like any other (clang-diagnostic-*
            # in .clang-tidy), reported with their check's name and made errors by WarningsAsErrors
            if a in ("-c", "-Werror") or os.path.normpath(os.path.join(self.dir, a)) == self.file:
                i += 1
                continue
            self.flags.append(a)
            i += 1
        if depfile is None and output is not None:
            depfile = output + ".d"  # CMake's Makefile generator: <object>.d beside the object
        self.depfile = os.path.join(self.dir, depfile) if depfile else None

    def key(self):
        """The cache key, or None when the dependency file is missing or stale."""
        if not self.depfile or not os.path.isfile(self.depfile):
            return None
        deps = read_depfile(self.depfile)
        if not deps:
            return None
        h = common.copy()
        h.update(normalize(shlex.join([rel(self.dir), rel(self.file)] + self.flags)).encode() + b"\0")
        built = os.stat(self.depfile).st_mtime
        for d in deps:
            path = os.path.normpath(os.path.join(self.dir, d))
            try:
                if os.stat(path).st_mtime > built:
                    return None  # changed since the last build: the include list may be out of date
                h.update(rel(path).encode() + b"\0" + file_digest(path).encode() + b"\0")
            except OSError:
                return None
        return h.hexdigest()


with open(db_path) as f:
    entries = json.load(f)
prefixes = [os.path.normpath(os.path.join(src_dir, p)) for p in args.paths]
units = []
for e in entries:
    u = Unit(e)
    if not u.file.startswith(src_dir + os.sep) or u.file.startswith(build_dir + os.sep):
        continue  # not ours, or generated
    if prefixes and not any(u.file == p or u.file.startswith(p + os.sep) for p in prefixes):
        continue
    units.append(u)
if not units:
    sys.exit("ads: no translation unit to check" + (f" under {' '.join(args.paths)}" if args.paths else ""))

keys = {}
if cache_dir:
    os.makedirs(cache_dir, exist_ok=True)
    for u in units:
        keys[u] = u.key()


def entry_path(key):
    return os.path.join(cache_dir, key[:2], key[2:])


def check(u):
    """(cache hit?, clang-tidy's findings or error output, clean?)"""
    key = keys.get(u)
    if key and os.path.exists(entry_path(key)):
        os.utime(entry_path(key))  # recently used
        return True, "", True
    p = subprocess.run([tidy, "--quiet", u.file, "--"] + u.flags, cwd=u.dir, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, errors="replace")
    clean = p.returncode == 0 and not re.search(r": (warning|error): ", p.stdout)
    if clean and key:
        path = entry_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as f:
            f.write(rel(u.file) + "\n")
        os.replace(tmp, path)
    if clean:
        return False, "", True
    out = p.stdout if p.stdout.strip() else p.stderr
    return False, out if out.strip() else f"clang-tidy exited with {p.returncode}\n", False


diag = re.compile(r"^\S.*:\d+:\d+: (warning|error): ")
seen, findings, failed, hits = set(), 0, [], 0
with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
    futures = {pool.submit(check, u): u for u in units}
    for done in concurrent.futures.as_completed(futures):
        u, (hit, out, clean) = futures[done], done.result()
        hits += hit
        if clean:
            continue
        failed.append(os.path.relpath(u.file, src_dir))
        # one block per diagnostic (its notes and source lines follow it); a header's finding once
        blocks, cur = [], []
        for line in out.splitlines():
            if diag.match(line) and cur:
                blocks.append(cur)
                cur = []
            cur.append(line)
        if cur:
            blocks.append(cur)
        for b in blocks:
            text = "\n".join(b)
            if text in seen:
                continue
            seen.add(text)
            findings += bool(diag.match(b[0]))
            print(text, flush=True)

if cache_dir:  # forget entries not used for 60 days
    old = time.time() - 60 * 86400
    for sub in os.scandir(cache_dir):
        if sub.is_dir():
            for e in os.scandir(sub.path):
                if e.stat().st_mtime < old:
                    os.unlink(e.path)
secs = time.monotonic() - start
cache = "no cache" if not cache_dir else f"{hits} from the cache ({sum(k is None for k in keys.values())} not cacheable)"
print(f"ads: clang-tidy: {len(units)} translation units, {len(units) - hits} checked, {cache}, "
      f"{findings} finding(s) in {len(failed)}, {secs:.1f} s")
sys.exit(1 if failed else 0)
PY
