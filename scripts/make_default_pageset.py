#!/usr/bin/env python3
"""Regenerate the embedded default page set ``engine/data/default.pages`` (+ ``.json``).

It starts known programs itself with a minimal environment (PATH only: no user data, no
credentials, no home directory), lets them build their working sets, captures their private
anonymous memory (root needed), and thins the result to at most ``--max-pages`` pages by
keeping every k-th page of each process, so that duplicates across processes keep their
proportion.

    sudo python3 scripts/make_default_pageset.py            # writes engine/data/default.pages
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from engine.pages import PageSet  # noqa: E402
from engine.workloads.capture import capture_pids  # noqa: E402
from engine.fileio import write_atomically  # noqa: E402
from engine.workloads.manifest import Manifest, manifest_path  # noqa: E402

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}
PY_A = r"""
import json, re, collections, zlib, time, sys
words = [("w%05d" % i) * (1 + i % 5) for i in range(20000)]
index = collections.defaultdict(list)
for i, w in enumerate(words):
    index[w[:3]].append(i)
blob = json.dumps({"k%d" % i: [i, str(i), i * 0.5] for i in range(5000)}).encode()
packed = zlib.compress(blob)
table = [bytes([i % 251]) * 4096 for i in range(64)]          # page-sized same-filled buffers
zeros = bytearray(4096 * 64)                                   # touched zero pages
for i in range(0, len(zeros), 4096):
    zeros[i] = 0
print("ready", flush=True)
sys.stdin.read()
"""
PY_B = r"""
import collections, random, time, sys
random.seed(7)
counts = collections.Counter(random.choice("abcdefgh") * random.randint(1, 40) for _ in range(40000))
matrix = [[random.random() for _ in range(200)] for _ in range(200)]
text = "\n".join("line %d: %s" % (i, "lorem ipsum dolor sit amet " * (i % 7)) for i in range(8000))
print("ready", flush=True)
sys.stdin.read()
"""
PERL = r"""
my %h; for my $i (1..30000) { $h{"key$i"} = "value" x ($i % 9); }
my @a = map { "x" x 100 } 1..2000;
$| = 1; print "ready\n"; my $x = <STDIN>;
"""


def start(argv):
    p = subprocess.Popen(argv, env=ENV, cwd="/", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)   # capture refuses its own group
    line = p.stdout.readline()
    if b"ready" not in line:
        p.kill()
        raise SystemExit(f"{argv[0]} did not start")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("-o", "--out", default=os.path.join(os.path.dirname(__file__), "..", "engine", "data", "default.pages"))
    ap.add_argument("--max-pages", type=int, default=768)
    a = ap.parse_args()
    py = sys.executable
    procs = [start([py, "-S", "-c", PY_A]), start([py, "-S", "-c", PY_B]), start([py, "-S", "-c", PY_A])]
    try:
        procs.append(start(["perl", "-e", PERL]))
    except FileNotFoundError:
        pass
    try:
        with tempfile.TemporaryDirectory() as td:
            raw = os.path.join(td, "raw.pages")
            man = capture_pids([p.pid for p in procs], raw)
            ps = PageSet.open(raw)
            n = len(ps)
            # keep every k-th page of each process (counted within the process), so pages at the
            # same offset in processes running the same program stay paired: duplicates across
            # processes keep their proportion
            k = max(1, -(-n // a.max_pages))
            keep, seen = [], {}
            for i, pid in enumerate(man.pid):
                j = seen.get(pid, 0)
                seen[pid] = j + 1
                if j % k == 0:
                    keep.append(i)
            thin = Manifest(source="scripts/make_default_pageset.py: known programs, minimal environment, "
                                   f"thinned {n} -> {len(keep)} pages",
                            processes=man.processes, notes=man.notes,
                            pid=[man.pid[i] for i in keep], vaddr=[man.vaddr[i] for i in keep],
                            region=[man.region[i] for i in keep])
            write_atomically(a.out, (ps[i] for i in keep))
            write_atomically(manifest_path(a.out), [json.dumps(thin.to_json(), indent=1).encode()])
            ps.close()
            print(f"wrote {a.out}: {len(keep)} pages of {n} captured from {len(procs)} processes")
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
