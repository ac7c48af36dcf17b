#!/usr/bin/env python3
"""What several ranks cost and give: warploss-train under mpirun -np N.

Usage: tools/bench-ranks.py [--train PATH] [--ranks 1,2,3] [--repeat 3]
                            [--mpirun PATH] [-- TRAINER-ARGS...]

Runs the trainer (default ./build/tools/warploss-train, on its built-in set
unless TRAINER-ARGS give --data) alone (N = 1) and under
`mpirun --oversubscribe -np N` for each N, `--repeat` times each, in this one
run of the script, and prints per N the median seconds per epoch and its
ratio to N = 1's, the milliseconds per step, the syncs with the item rows rank
0's steps changed, the bytes rank 0 put into the reductions per sync and the
milliseconds per sync with the part of it spent waiting for the slowest rank
to arrive, the exchange's time (the sync less the wait) against the steps'
between two syncs, and the final
precision@10 and AUC (the same on every repeat: one N, one model). Device
selection is the trainer's (each rank its own device; under PoCL set
POCL_MAX_PTHREAD_COUNT so that the ranks share the cores: default 1 here).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def run(cmd, env):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        sys.exit("bench-ranks: %s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stderr[-3000:]))
    out = r.stdout
    t = re.search(r"^trained \d+ epochs in [0-9.]+ s \(([0-9.]+) s per epoch", out, re.M)
    m = re.search(r"precision@10 ([0-9.]+).*AUC ([0-9.]+)", out)
    s = re.search(r"^rank 0: (\d+) syncs \((\d+) sparse\), (\d+) rows changed, (\d+) bytes and ([0-9.]+) ms per sync "
                  r"\(([0-9.]+) ms of it waiting for the other ranks\); ([0-9.]+) ms per step", out, re.M)
    steps = None
    if not s:
        n = re.search(r"split: .*?(\d+) train pairs", out)
        b = re.search(r"batch (\d+)", out)
        if t and n and b:
            per_epoch = -(-int(n.group(1)) // int(b.group(1)))
            steps = float(t.group(1)) * 1e3 / per_epoch
    return {
        "epoch": float(t.group(1)) if t else float("nan"),
        "p10": float(m.group(1)) if m else float("nan"),
        "auc": float(m.group(2)) if m else float("nan"),
        "syncs": int(s.group(1)) if s else 0,
        "sparse": int(s.group(2)) if s else 0,
        "rows": int(s.group(3)) if s else 0,
        "bytes": int(s.group(4)) if s else 0,
        "sync_ms": float(s.group(5)) if s else 0.0,
        "wait_ms": float(s.group(6)) if s else 0.0,
        "step_ms": float(s.group(7)) if s else steps,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="./build/tools/warploss-train")
    ap.add_argument("--ranks", default="1,2,3")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("rest", nargs="*", help="warploss-train's arguments (after --)")
    a = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("POCL_MAX_PTHREAD_COUNT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    args = ["--eval-every", "0"] + a.rest
    rows = []
    for n in [int(x) for x in a.ranks.split(",")]:
        cmd = [a.train] + args if n == 1 else [a.mpirun, "--oversubscribe", "-np", str(n), a.train] + args
        runs = [run(cmd, env) for _ in range(a.repeat)]
        med = lambda k: statistics.median(r[k] for r in runs)
        rows.append((n, med("epoch"), med("step_ms"), runs[0]["syncs"], runs[0]["sparse"], runs[0]["rows"], med("bytes"),
                     med("sync_ms"), med("wait_ms"), runs[0]["p10"], runs[0]["auc"]))
    base = rows[0][1]
    every = 1
    if "--sync-every" in args:
        every = int(args[args.index("--sync-every") + 1])
    print("warploss-train %s (median of %d; POCL_MAX_PTHREAD_COUNT=%s)" % (" ".join(args), a.repeat,
                                                                          env["POCL_MAX_PTHREAD_COUNT"]))
    print("| N | s/epoch | vs N=1 | ms/step | syncs (sparse) | rows changed/sync | bytes/sync | ms/sync | of it waiting "
          "| exchange vs steps | p@10 | AUC |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, ep, step, syncs, sparse, changed, by, sms, wait, p10, auc in rows:
        share = (sms - wait) / (every * step) if syncs and step else 0.0
        print("| %d | %.3f | %.2fx | %.2f | %s | %s | %s | %s | %s | %s | %.4f | %.4f |" % (
            n, ep, ep / base, step, "%d (%d)" % (syncs, sparse) if syncs else "-", changed if syncs else "-",
            "%.0f" % by if syncs else "-", "%.2f" % sms if syncs else "-", "%.2f" % wait if syncs else "-",
            "%.0f%%" % (100 * share) if syncs else "-", p10, auc))


if __name__ == "__main__":
    main()
