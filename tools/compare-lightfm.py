#!/usr/bin/env python3
"""LightFM's WARP against warploss-train on the same data, split and settings.

Both tools train on the same train/test files (written here: MovieLens
ratings.csv with ratings >= --min-rating, a seeded hold-out of
floor(--test-fraction * n) of each user's n items; or warploss-train's
synthetic set through its --write-split), with the same dim, epochs,
negatives (LightFM's max_sampled), learning rate, optimizer (Adagrad) and
seed. Both models are then evaluated by ONE evaluator written here in numpy,
on their embeddings (LightFM: user_embeddings, item_embeddings, item_biases;
warploss: its --export-npy files), with LightFM's definitions of
precision@k, recall@k, AUC and reciprocal rank, training items excluded.
Training seconds per epoch: LightFM timed around fit_partial(epochs=1,
num_threads=--threads); warploss from its --metrics JSON "seconds".

LightFM needs a Python environment of its own; the script runs itself with
--python, or the first of $VIRTUAL_ENV, ./.venv, ./venv, /tmp/lfm-venv whose
python imports lightfm, and prints the install commands when none does.

Example:
  tools/compare-lightfm.py --epochs 10 --dim 32 --negatives 100
  tools/compare-lightfm.py --synthetic 2000,3000,100000
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

INSTALL_HINT = """LightFM is not installed for any Python this script found. Install it in a virtual environment:
  python3 -m venv /tmp/lfm-venv
  /tmp/lfm-venv/bin/pip install numpy scipy "setuptools<70" wheel
  /tmp/lfm-venv/bin/pip install --no-build-isolation lightfm
then run this script again (it finds /tmp/lfm-venv), or pass --python PATH/TO/bin/python."""

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "ml-latest-small", "ratings.csv"),
                   help="MovieLens ratings.csv (userId,movieId,rating,timestamp; default %(default)s)")
    p.add_argument("--synthetic", metavar="U,I,N",
                   help="use warploss-train's synthetic set of this size instead of --data")
    p.add_argument("--trainer", default=os.path.join(".", "build", "tools", "warploss-train"),
                   help="the warploss-train binary (default %(default)s)")
    p.add_argument("--python", help="a Python with lightfm (default: detected, see above)")
    p.add_argument("--min-rating", type=float, default=4.0, help="keep ratings >= R (default %(default)s)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="held-out share per user (default %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="split, initial tables and sampling (default %(default)s)")
    p.add_argument("--dim", type=int, default=32, help="embedding dimension (default %(default)s)")
    p.add_argument("--epochs", type=int, default=10, help="epochs (default %(default)s)")
    p.add_argument("--negatives", type=int, default=100,
                   help="warploss --negatives = LightFM max_sampled (default %(default)s)")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (default %(default)s)")
    p.add_argument("--k", type=int, default=10, help="k of precision@k and recall@k (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="LightFM's num_threads (default %(default)s)")
    p.add_argument("--device", help="warploss-train --device")
    p.add_argument("--trainer-args", default="", help="more warploss-train arguments, one string (e.g. '--batch 64')")
    p.add_argument("--work", help="keep the split, exports and logs in this folder (default: a temporary one)")
    a = p.parse_args(argv)
    for name in ("dim", "epochs", "negatives", "k", "threads"):
        if getattr(a, name) < 1:
            p.error("--%s must be at least 1" % name)
    if not (0.0 < a.test_fraction < 1.0):
        p.error("--test-fraction must be in (0, 1)")
    if not a.lr > 0:
        p.error("--lr must be > 0")
    return a


# ------------------------------------------------------------------ interpreter


def has_modules(python, modules):
    try:
        r = subprocess.run([python, "-c", "import " + ", ".join(modules)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_interpreter(args, argv):
    """Run under a Python that has numpy, scipy and lightfm (re-executing this script if needed)."""
    needed = ["numpy", "scipy", "lightfm"]
    try:
        import lightfm  # noqa: F401
        import numpy  # noqa: F401
        import scipy  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("COMPARE_LIGHTFM_REEXEC"):
        sys.exit("compare-lightfm: %s lacks numpy, scipy or lightfm\n%s" % (sys.executable, INSTALL_HINT))
    candidates = []
    if args.python:
        candidates.append(args.python)
    else:
        if os.environ.get("VIRTUAL_ENV"):
            candidates.append(os.path.join(os.environ["VIRTUAL_ENV"], "bin", "python"))
        for d in (".venv", "venv", os.path.join(REPO, ".venv"), os.path.join(REPO, "venv"), "/tmp/lfm-venv"):
            candidates.append(os.path.join(d, "bin", "python"))
    for py in candidates:
        if os.path.exists(py) and has_modules(py, needed):
            env = dict(os.environ, COMPARE_LIGHTFM_REEXEC="1")
            os.execve(py, [py, os.path.abspath(__file__)] + argv, env)
    if args.python:
        sys.exit("compare-lightfm: %s cannot import numpy, scipy and lightfm\n%s" % (args.python, INSTALL_HINT))
    sys.exit("compare-lightfm: " + INSTALL_HINT)


# ------------------------------------------------------------------ data


def write_pairs(path, pairs):
    with open(path, "w") as f:
        for u, i in pairs:
            f.write("%d\t%d\n" % (u, i))


def read_pairs(path):
    pairs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split("\t")
            try:
                pairs.append((int(parts[0]), int(parts[1])))
            except (ValueError, IndexError):
                sys.exit("compare-lightfm: %s:%d: expected 'user<TAB>item', got %r" % (path, n, line))
    return pairs


def split_movielens(args, work):
    """ratings >= min-rating; per user (items sorted, shuffled with a per-user seeded generator)
    floor(test_fraction * n) held out. Returns (train, test) of (user, item) original ids."""
    if not os.path.isfile(args.data):
        sys.exit("compare-lightfm: %s not found (pass --data PATH/ratings.csv, or --synthetic U,I,N)" % args.data)
    by_user = {}
    with open(args.data) as f:
        header = f.readline()
        if not header.lower().startswith("userid"):
            sys.exit("compare-lightfm: %s: expected a MovieLens ratings.csv header "
                     "(userId,movieId,rating,timestamp), got %r" % (args.data, header.strip()))
        for n, line in enumerate(f, 2):
            parts = line.rstrip("\n").split(",")
            if len(parts) < 3:
                sys.exit("compare-lightfm: %s:%d: expected userId,movieId,rating,..., got %r" % (args.data, n, line))
            try:
                u, i, r = int(parts[0]), int(parts[1]), float(parts[2])
            except ValueError:
                sys.exit("compare-lightfm: %s:%d: not a number in %r" % (args.data, n, line.strip()))
            if r >= args.min_rating:
                by_user.setdefault(u, set()).add(i)
    train, test = [], []
    for u in sorted(by_user):
        items = sorted(by_user[u])
        random.Random(args.seed * 1000003 + u).shuffle(items)
        held = int(args.test_fraction * len(items))
        test += [(u, i) for i in items[:held]]
        train += [(u, i) for i in items[held:]]
    train.sort()
    test.sort()
    write_pairs(os.path.join(work, "train.tsv"), train)
    write_pairs(os.path.join(work, "test.tsv"), test)
    return "%s (ratings >= %g, %g per user held out, seed %d)" % (args.data, args.min_rating, args.test_fraction,
                                                                  args.seed)


def split_synthetic(args, work):
    """warploss-train's synthetic set and split, written by the trainer itself (--write-split)."""
    cmd = [args.trainer, "--synthetic", args.synthetic, "--seed", str(args.seed), "--test-fraction",
           str(args.test_fraction), "--epochs", "1", "--dim", "2", "--negatives", "1", "--eval-every", "0",
           "--quiet", "--write-split", work]
    if args.device:
        cmd += ["--device", args.device]
    run(cmd, os.path.join(work, "write-split.log"))
    return "warploss-train --synthetic %s (seed %d, %g per user held out)" % (args.synthetic, args.seed,
                                                                             args.test_fraction)


def run(cmd, log):
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        try:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
        except OSError as e:
            sys.exit("compare-lightfm: cannot run %s: %s (build it with `meson compile -C build`, "
                     "or pass --trainer)" % (cmd[0], e))
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        sys.exit("compare-lightfm: %s failed (exit %d); its output (%s):\n%s" % (cmd[0], r.returncode, log, tail))


# ------------------------------------------------------------------ the evaluator (numpy only)


def evaluate(user_emb, item_emb, item_bias, train_pairs, test_pairs, k):
    """LightFM's precision_at_k, recall_at_k, auc_score, reciprocal_rank (train_interactions given,
    means over users with test pairs) from the embeddings. Pairs are dense (user, item) index arrays.
    rank of a test item = items that are not training positives of the user, other than it, with a
    strictly higher score (scores float32: dot(U[u], V[i]) + b[i])."""
    import numpy as np

    U = np.ascontiguousarray(user_emb, dtype=np.float32)
    V = np.ascontiguousarray(item_emb, dtype=np.float32)
    b = np.ascontiguousarray(item_bias, dtype=np.float32).reshape(-1)
    num_items = V.shape[0]
    tr_u, tr_i = train_pairs
    te_u, te_i = test_pairs
    order = np.argsort(te_u, kind="stable")
    te_u, te_i = te_u[order], te_i[order]
    users, starts, counts = np.unique(te_u, return_index=True, return_counts=True)
    train_count = np.bincount(tr_u, minlength=U.shape[0])
    tr_order = np.argsort(tr_u, kind="stable")
    tr_u_sorted, tr_i_sorted = tr_u[tr_order], tr_i[tr_order]
    tr_start = np.searchsorted(tr_u_sorted, np.arange(U.shape[0]))
    prec, rec, auc, rr = [], [], [], []
    chunk = max(1, int(2e7 // max(num_items, 1)))
    for c0 in range(0, len(users), chunk):
        cu = users[c0:c0 + chunk]
        S = U[cu] @ V.T + b[None, :]
        for row, u in enumerate(cu):
            s = S[row]
            t0 = tr_start[u]
            s[tr_i_sorted[t0:t0 + train_count[u]]] = -np.inf  # training positives never count
            j = c0 + row
            items = te_i[starts[j]:starts[j] + counts[j]]
            ranks = (s[None, :] > s[items][:, None]).sum(axis=1).astype(np.float64)
            n_pos = len(items)
            hits = float((ranks < k).sum())
            prec.append(hits / k)
            rec.append(hits / n_pos)
            rr.append(1.0 / (ranks.min() + 1.0))
            n_neg = num_items - (n_pos + int(train_count[u]))
            if n_neg <= 0:
                auc.append(1.0)
                continue
            sr = np.maximum(np.sort(ranks) - np.arange(n_pos), 0.0)
            auc.append(float(np.mean(1.0 - sr / n_neg)))
    return {"precision": float(np.mean(prec)), "recall": float(np.mean(rec)), "auc": float(np.mean(auc)),
            "mrr": float(np.mean(rr)), "users": len(users)}


# ------------------------------------------------------------------ the tools


def dense_split(train, test):
    """Dense ids from the training pairs (sorted original ids); test pairs with an unknown user or item dropped."""
    import numpy as np

    user_ids = sorted({u for u, _ in train})
    item_ids = sorted({i for _, i in train})
    um = {u: n for n, u in enumerate(user_ids)}
    im = {i: n for n, i in enumerate(item_ids)}
    tr = np.array([(um[u], im[i]) for u, i in train], dtype=np.int64).reshape(-1, 2)
    kept = [(um[u], im[i]) for u, i in test if u in um and i in im]
    te = np.array(kept, dtype=np.int64).reshape(-1, 2)
    return (np.array(user_ids, dtype=np.int64), np.array(item_ids, dtype=np.int64), (tr[:, 0], tr[:, 1]),
            (te[:, 0], te[:, 1]), len(test) - len(kept))


def train_lightfm(args, num_users, num_items, train):
    import numpy as np
    import scipy.sparse as sp
    from lightfm import LightFM

    tr_u, tr_i = train
    X = sp.coo_matrix((np.ones(len(tr_u), dtype=np.float32), (tr_u, tr_i)), shape=(num_users, num_items))
    X = X.tocsr().tocoo()
    model = LightFM(no_components=args.dim, loss="warp", learning_schedule="adagrad", learning_rate=args.lr,
                    max_sampled=args.negatives, random_state=args.seed)
    seconds = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        model.fit_partial(X, epochs=1, num_threads=args.threads)
        seconds.append(time.perf_counter() - t0)
    return model.user_embeddings, model.item_embeddings, model.item_biases, seconds


def train_warploss(args, work, user_ids, item_ids):
    import numpy as np

    export = os.path.join(work, "warploss-npy")
    metrics = os.path.join(work, "warploss-metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    cmd = [args.trainer, "--data", os.path.join(work, "train.tsv"), "--test", os.path.join(work, "test.tsv"),
           "--format", "tsv", "--seed", str(args.seed), "--dim", str(args.dim), "--epochs", str(args.epochs),
           "--negatives", str(args.negatives), "--lr", repr(args.lr), "--optimizer", "adagrad", "--k", str(args.k),
           "--eval-every", "1", "--metrics", metrics, "--export-npy", export, "--quiet"]
    if args.device:
        cmd += ["--device", args.device]
    cmd += args.trainer_args.split()
    run(cmd, os.path.join(work, "warploss-train.log"))
    ue = np.load(os.path.join(export, "user_embeddings.npy"))
    ie = np.load(os.path.join(export, "item_embeddings.npy"))
    ib = np.load(os.path.join(export, "item_biases.npy"))
    uid = np.load(os.path.join(export, "user_ids.npy"))
    iid = np.load(os.path.join(export, "item_ids.npy"))
    # reorder warploss's rows (its own dense order) to this script's dense ids (sorted original ids)
    upos = {int(x): n for n, x in enumerate(uid)}
    ipos = {int(x): n for n, x in enumerate(iid)}
    missing = [int(u) for u in user_ids if int(u) not in upos][:5] + [int(i) for i in item_ids
                                                                      if int(i) not in ipos][:5]
    if missing or len(uid) != len(user_ids) or len(iid) != len(item_ids):
        sys.exit("compare-lightfm: warploss-train's ids differ from the split's (%d users, %d items exported; "
                 "%d, %d in train.tsv; e.g. %s)" % (len(uid), len(iid), len(user_ids), len(item_ids), missing))
    ue = ue[[upos[int(u)] for u in user_ids]]
    ie = ie[[ipos[int(i)] for i in item_ids]]
    ib = ib[[ipos[int(i)] for i in item_ids]]
    seconds, own = [], None
    with open(metrics) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("seconds") and rec.get("epoch", 0) >= 1:
                seconds.append(float(rec["seconds"]))
            own = rec
    return ue, ie, ib, seconds, own


# ------------------------------------------------------------------ main


def main(argv):
    args = parse_args(argv)
    if not args.synthetic:
        args.data = os.path.normpath(args.data)
    ensure_interpreter(args, argv)
    import numpy as np

    if not os.access(args.trainer, os.X_OK):
        sys.exit("compare-lightfm: %s is not an executable (build it: meson compile -C build; or --trainer PATH)" %
                 args.trainer)
    work = args.work or tempfile.mkdtemp(prefix="compare-lightfm-")
    os.makedirs(work, exist_ok=True)
    try:
        source = split_synthetic(args, work) if args.synthetic else split_movielens(args, work)
        train = read_pairs(os.path.join(work, "train.tsv"))
        test = read_pairs(os.path.join(work, "test.tsv"))
        user_ids, item_ids, tr, te, dropped = dense_split(train, test)
        print("data: %s" % source)
        print("split: %d users, %d items, %d train pairs, %d test pairs (%d dropped: user or item not in train)" %
              (len(user_ids), len(item_ids), len(tr[0]), len(te[0]), dropped))
        print("settings: dim %d, epochs %d, negatives/max_sampled %d, lr %g, adagrad, seed %d, k %d, "
              "LightFM num_threads %d" % (args.dim, args.epochs, args.negatives, args.lr, args.seed, args.k,
                                          args.threads))
        sys.stdout.flush()

        results = {}
        ue, ie, ib, secs = train_lightfm(args, len(user_ids), len(item_ids), tr)
        results["LightFM"] = (evaluate(ue, ie, ib, tr, te, args.k), secs)
        ue, ie, ib, secs, own = train_warploss(args, work, user_ids, item_ids)
        results["warploss"] = (evaluate(ue, ie, ib, tr, te, args.k), secs)

        names = list(results)
        rows = [("precision@%d" % args.k, "precision"), ("recall@%d" % args.k, "recall"), ("AUC", "auc"),
                ("MRR", "mrr")]
        print()
        print("%-22s" % "metric" + "".join("%14s" % n for n in names))
        for label, key in rows:
            print("%-22s" % label + "".join("%14.4f" % results[n][0][key] for n in names))
        print("%-22s" % "s/epoch (median)" + "".join("%14.3f" % float(np.median(results[n][1]))
                                                    if results[n][1] else "%14s" % "-" for n in names))
        print("%-22s" % "test users" + "".join("%14d" % results[n][0]["users"] for n in names))
        if own and "precision_at_k" in own:
            print("\n(warploss-train's own evaluation, on the device: precision@%s %.4f, recall %.4f, AUC %.4f, "
                  "MRR %.4f)" % (own.get("k", args.k), own["precision_at_k"], own.get("recall_at_k", float("nan")),
                                 own.get("auc", float("nan")), own.get("mrr", float("nan"))))
        if args.work:
            print("files: %s" % args.work)
    finally:
        if not args.work and os.environ.get("COMPARE_LIGHTFM_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
