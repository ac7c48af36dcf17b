#!/usr/bin/env python3
"""compare-seed.py: the seed package (warp-loss 0.0.1, PyTorch, on the CPU)
against warploss on the same inputs: do they agree, and how much faster is
warploss.

For each shape and input regime it writes the scores to raw float32 files,
runs tools/warploss-compare-driver on them (warploss on an OpenCL device),
and runs the seed's warp_loss(pos [rows x 1], neg [rows x N], num_labels,
device=cpu) on the same tensors. It checks:
  - the loss within 1e-4 relative where the seed's loss is finite (the seed
    gives -inf or NaN when floor((num_labels - 1) / k) = 0, warploss 0 there);
  - the first offender of every row, taken from the seed's own
    num_tries_gt_zero exactly as warp_loss calls it, equal to warploss's;
  - the loss of the first rows one by one (the seed on single rows against
    warploss's WL_REDUCE_NONE).
Times are medians over --repeat runs after a warm-up: the seed's forward call
(torch with its default threads), warploss's wl_loss on host memory (copies
in and out included, the like-for-like figure) and wl_loss_cl on device
buffers (event profiling, loss + offender).

The seed is fetched with `pip download warp-loss` into a temporary folder
unless --seed-dir names a folder holding warp_loss/ or the wheel. It needs a
Python with torch: Debian's python3-torch is for /usr/bin/python3; the script
re-runs itself there if the current Python lacks torch.

usage: tools/compare-seed.py [--build DIR] [--shapes 1024x100,4096x1024,...]
                             [--regimes random,early,deep,none] [--repeat N]
                             [--num-labels L] [--device SPEC] [--seed-dir DIR]
"""
import argparse
import glob
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ensure_torch():
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    for python in ("/usr/bin/python3", "/usr/bin/python3.11"):
        if os.path.exists(python) and os.path.realpath(python) != os.path.realpath(sys.executable):
            if subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
                os.execv(python, [python] + sys.argv)
    sys.exit("compare-seed: no Python with torch found (install python3-torch and run with /usr/bin/python3)")


def fetch_seed(seed_dir):
    """Make warp_loss importable; return the folder it comes from."""
    if seed_dir is None:
        seed_dir = tempfile.mkdtemp(prefix="warploss-seed-")
    if not os.path.isdir(os.path.join(seed_dir, "warp_loss")):
        wheels = glob.glob(os.path.join(seed_dir, "warp_loss-*.whl"))
        if not wheels:
            tried = []
            for cmd in ([sys.executable, "-m", "pip"], ["pip3"], ["pip"]):
                if cmd[0] != sys.executable and not shutil.which(cmd[0]):
                    continue
                r = subprocess.run(cmd + ["download", "--no-deps", "--only-binary", ":all:", "-d", seed_dir,
                                          "warp-loss==0.0.1"], capture_output=True, text=True)
                tried.append(" ".join(cmd))
                if r.returncode == 0:
                    break
            wheels = glob.glob(os.path.join(seed_dir, "warp_loss-*.whl"))
            if not wheels:
                sys.exit("compare-seed: could not download warp-loss (tried %s); pass --seed-dir" % ", ".join(tried))
        with zipfile.ZipFile(wheels[0]) as z:
            z.extractall(seed_dir)
    sys.path.insert(0, seed_dir)
    return seed_dir


def make_inputs(np, rows, negatives, regime, rng):
    """random: standard normal scores (the usual training case: offenders early);
    early/deep/none: as tools/warploss-bench builds them (offender at 0, the middle, none)."""
    if regime == "random":
        pos = rng.standard_normal(rows).astype(np.float32)
        neg = rng.standard_normal((rows, negatives)).astype(np.float32)
        return pos, neg
    pos = rng.uniform(0.0, 1.0, rows).astype(np.float32)
    neg = rng.uniform(-3.0, -1.5, (rows, negatives)).astype(np.float32)
    if negatives and regime != "none":
        at = 0 if regime == "early" else negatives // 2
        neg[:, at] = rng.uniform(1.0, 3.0, rows).astype(np.float32)
        neg[:, at + 1:] = rng.uniform(-3.0, 3.0, (rows, negatives - at - 1)).astype(np.float32)
    return pos, neg


def seed_offenders(torch, losses_mod, pos_t, neg_t):
    """The first offender per row (-1: none) from the seed's own code path."""
    batch, trials = neg_t.size(0), neg_t.size(1)
    ones = torch.ones(batch, 1).float()
    scores = torch.cat([1 + neg_t - pos_t, ones], dim=1)
    tries = losses_mod.num_tries_gt_zero(scores, batch, trials, batch * (trials + 1), torch.device("cpu"))
    first = tries - 1
    first[first >= trials] = -1
    return first.numpy().astype("int32")


def median_time(fn, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build folder (default: build)")
    ap.add_argument("--shapes", default="1024x100,4096x1024,16384x256,65536x64")
    ap.add_argument("--regimes", default="random,none")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--num-labels", type=int, default=100000)
    ap.add_argument("--device", default=None, help="warploss device spec (default: $WARPLOSS_DEVICE, else the best)")
    ap.add_argument("--seed-dir", default=None)
    ap.add_argument("--rows-checked", type=int, default=16, help="rows whose loss is checked one by one")
    args = ap.parse_args()

    ensure_torch()
    import numpy as np
    import torch
    seed_dir = fetch_seed(args.seed_dir)
    from warp_loss import losses as seed_losses
    from warp_loss.losses import warp_loss

    driver = os.path.join(args.build, "tools", "warploss-compare-driver")
    if not os.access(driver, os.X_OK):
        sys.exit("compare-seed: %s not found; build first (meson setup build && meson compile -C build)" % driver)
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",") if s]
    regimes = [r for r in args.regimes.split(",") if r]
    cpu = torch.device("cpu")
    work = tempfile.mkdtemp(prefix="warploss-compare-")
    rng = np.random.default_rng(12345)
    failures = 0
    print("seed: warp-loss 0.0.1 from %s, torch %s on the CPU (%d threads)" %
          (seed_dir, torch.__version__, torch.get_num_threads()))
    print("num_labels %d, margin 1 (the seed's), reduction sum; times are medians of %d runs" %
          (args.num_labels, args.repeat))
    header = "%-11s %-7s %13s %13s %8s %11s %11s %10s %10s" % (
        "shape", "regime", "seed loss", "warploss", "agree", "seed ms", "wl host ms", "x (host)", "x (device)")
    device_name = None
    rows_out = []
    for rows, negatives in shapes:
        for regime in regimes:
            pos, neg = make_inputs(np, rows, negatives, regime, rng)
            prefix = os.path.join(work, "%dx%d-%s" % (rows, negatives, regime))
            pos.tofile(prefix + ".pos")
            neg.tofile(prefix + ".neg")
            cmd = [driver, str(rows), str(negatives), str(args.num_labels), prefix + ".pos", prefix + ".neg",
                   prefix, str(args.repeat)] + ([args.device] if args.device else [])
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("compare-seed: %s failed:\n%s" % (" ".join(cmd), r.stderr))
            wl = json.loads(r.stdout)
            if device_name is None:
                device_name = wl["device"]
                print("warploss: %s (%s scan) via %s" % (device_name, wl["scan_variant"], driver))
                print()
                print(header)
            wl_offender = np.fromfile(prefix + ".offender", dtype=np.int32)
            wl_rowloss = np.fromfile(prefix + ".rowloss", dtype=np.float32)

            pos_t = torch.from_numpy(pos).view(-1, 1)
            neg_t = torch.from_numpy(neg)
            with torch.no_grad():
                seed_loss = float(warp_loss(pos_t, neg_t, num_labels=args.num_labels, device=cpu))
                seed_seconds = median_time(lambda: warp_loss(pos_t, neg_t, num_labels=args.num_labels, device=cpu),
                                           args.repeat)
                same_offenders = bool(np.array_equal(seed_offenders(torch, seed_losses, pos_t, neg_t), wl_offender))
                rows_ok = True
                for b in range(min(rows, args.rows_checked)):
                    one = float(warp_loss(pos_t[b:b + 1], neg_t[b:b + 1], num_labels=args.num_labels, device=cpu))
                    if math.isfinite(one) and abs(one - float(wl_rowloss[b])) > 1e-4 * abs(one) + 1e-6:
                        rows_ok = False
            if math.isfinite(seed_loss):
                loss_ok = abs(wl["loss"] - seed_loss) <= 1e-4 * abs(seed_loss) + 1e-6
                agree = "yes" if loss_ok and same_offenders and rows_ok else "NO"
            else:
                agree = "seed %s" % seed_loss if same_offenders else "NO"
                loss_ok = True
            failures += agree == "NO"
            host_x = seed_seconds / wl["host_seconds"] if wl["host_seconds"] > 0 else float("inf")
            dev_x = seed_seconds / wl["device_seconds"] if wl["device_seconds"] > 0 else float("inf")
            print("%-11s %-7s %13.6g %13.6g %8s %11.3f %11.3f %10.1f %10.1f" % (
                "%dx%d" % (rows, negatives), regime, seed_loss, wl["loss"], agree, seed_seconds * 1e3,
                wl["host_seconds"] * 1e3, host_x, dev_x))
            sys.stdout.flush()
            rows_out.append(dict(rows=rows, negatives=negatives, regime=regime, seed_loss=seed_loss,
                                 warploss_loss=wl["loss"], agree=agree, seed_seconds=seed_seconds,
                                 warploss_host_seconds=wl["host_seconds"],
                                 warploss_device_seconds=wl["device_seconds"]))
    print()
    print("x (host): seed time / warploss wl_loss on host memory (copies included);"
          " x (device): seed time / wl_loss_cl device time")
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("compare-seed: %d case(s) disagree" % failures)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
