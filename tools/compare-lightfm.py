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

Cold start (--cold-items F): every rating >= --min-rating (default: every
rating) is a positive; a seeded floor(F * n) of the n rated items are cold:
all their pairs are held out, and the warm items' pairs split per user as
above (train.tsv; test.tsv holds the warm and the cold held-out pairs). The
catalogue is every movie of --movies (movies.csv) and every rated item; the
item features (--item-features) are its genres and an identity feature per
item (genres+identity), its genres only (genres), or the identity only (none:
no features), each row scaled to sum 1 as LightFM's Dataset does with
normalize=True ('(no genres listed)' gives no genre, as warploss-train reads
it, so such a movie's genres-only row is empty: its representation is 0);
the users have their identity only. LightFM gets the features in every
fit_partial and is evaluated on get_user_representations() and
get_item_representations(features); its none is its identity over the whole
catalogue. warploss-train gets --item-features FILE (and --no-identity for
genres; none: no feature file, the plain model, whose catalogue is the
training items only, so it has no cold rows) and exports its representations
p, q, b under the same .npy names and its item feature matrix, which is
checked against LightFM's by feature name. Warm: the warm held-out pairs
ranked among the warm items (those in train.tsv), training items excluded;
cold: each user's cold held-out items ranked among the cold items only. One
table: the warm and the cold metrics, seconds per epoch and their ratio to
the same tool's none. LightFM's models take their epochs in turn (a change
in the machine's load falls on all alike), and their CPU seconds are printed
too. Items with the same features and no identity share one representation:
where ranked items tie so, the metrics with ties counted against the
held-out item are printed under the table (LightFM's rank counts only
strictly higher scores, so a tie counts in the held-out item's favour).

LightFM needs a Python environment of its own; the script runs itself with
--python, or the first of $VIRTUAL_ENV, ./.venv, ./venv, /tmp/lfm-venv whose
python imports lightfm, and prints the install commands when none does.

Example:
  tools/compare-lightfm.py --epochs 10 --dim 32 --negatives 100
  tools/compare-lightfm.py --synthetic 2000,3000,100000
  tools/compare-lightfm.py --cold-items 0.2 --epochs 20
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
FEATURE_SETS = ("genres+identity", "genres", "none")  # --item-features


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
    p.add_argument("--min-rating", type=float,
                   help="keep ratings >= R (default 4; with --cold-items 0: every rating)")
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
    p.add_argument("--only", choices=("lightfm", "warploss"), help="run one tool only (default: both)")
    g = p.add_argument_group("cold start (the hybrid model: item features)")
    g.add_argument("--cold-items", type=float, metavar="F",
                   help="hold out a seeded share F of the rated items with all their pairs as cold items, and "
                        "compare the models with item features (see below)")
    g.add_argument("--item-features", metavar="LIST",
                   help="with --cold-items: the feature sets to run, comma-separated, of %s (default: all three)"
                        % ", ".join(FEATURE_SETS))
    g.add_argument("--movies", help="MovieLens movies.csv of the genres (default: movies.csv beside --data)")
    a = p.parse_args(argv)
    if a.cold_items is not None:
        if a.synthetic:
            p.error("--cold-items and --synthetic exclude each other (the synthetic set has no item features)")
        if not (0.0 < a.cold_items < 1.0):
            p.error("--cold-items must be in (0, 1)")
        kinds = [x.strip() for x in (a.item_features or ",".join(FEATURE_SETS)).split(",") if x.strip()]
        bad = [x for x in kinds if x not in FEATURE_SETS]
        if bad or not kinds:
            p.error("--item-features: %s is none of %s" % (",".join(bad) or "''", ", ".join(FEATURE_SETS)))
        a.item_features = list(dict.fromkeys(kinds))
        if a.movies is None:
            a.movies = os.path.join(os.path.dirname(os.path.normpath(a.data)), "movies.csv")
    elif a.movies is not None or a.item_features is not None:
        p.error("--item-features and --movies need --cold-items")
    if a.min_rating is None:
        a.min_rating = 0.0 if a.cold_items is not None else 4.0
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


def read_ratings(args):
    """{user: set of items} of the ratings >= --min-rating in --data."""
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
    return by_user


def hold_out(args, by_user):
    """Per user (items sorted, shuffled with a per-user seeded generator) floor(test_fraction * n) of
    the n items held out. Returns (train, test), sorted lists of (user, item) original ids."""
    train, test = [], []
    for u in sorted(by_user):
        items = sorted(by_user[u])
        random.Random(args.seed * 1000003 + u).shuffle(items)
        held = int(args.test_fraction * len(items))
        test += [(u, i) for i in items[:held]]
        train += [(u, i) for i in items[held:]]
    train.sort()
    test.sort()
    return train, test


def split_movielens(args, work):
    """ratings >= min-rating; per user floor(test_fraction * n) held out (hold_out), written to
    train.tsv and test.tsv."""
    train, test = hold_out(args, read_ratings(args))
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


# ------------------------------------------------------------------ cold start: the split and the features


def split_cold(args, work):
    """A seeded floor(cold_items * n) of the n items with ratings >= min-rating held out as cold items
    with all their pairs; the other (warm) items' pairs split per user as split_movielens does.
    Writes train.tsv, test.tsv (warm and cold held-out pairs together) and cold-items.txt.
    Returns (description, train, warm test, cold test, cold item ids), pairs of original ids."""
    by_user = read_ratings(args)
    rated = sorted({i for items in by_user.values() for i in items})
    cold = set(random.Random(args.seed).sample(rated, int(args.cold_items * len(rated))))
    warm_by_user = {u: {i for i in items if i not in cold} for u, items in by_user.items()}
    train, warm_test = hold_out(args, warm_by_user)
    cold_test = sorted((u, i) for u, items in by_user.items() for i in items if i in cold)
    write_pairs(os.path.join(work, "train.tsv"), train)
    write_pairs(os.path.join(work, "test.tsv"), sorted(warm_test + cold_test))
    with open(os.path.join(work, "cold-items.txt"), "w") as f:
        f.writelines("%d\n" % i for i in sorted(cold))
    return ("%s (ratings >= %g; %d of its %d items cold, seed %d; the warm items' pairs %g per user held out)" %
            (args.data, args.min_rating, len(cold), len(rated), args.seed, args.test_fraction),
            train, warm_test, cold_test, sorted(cold))


def read_movies(path):
    """{movieId: [genre, ...]} of a MovieLens movies.csv (movieId,title,genres), in the file's order;
    '(no genres listed)' gives no genre, as warploss-train reads the file."""
    import csv

    if not os.path.isfile(path):
        sys.exit("compare-lightfm: %s not found (pass --movies PATH/movies.csv)" % path)
    genres = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        if [h.strip().lower() for h in header[:3]] != ["movieid", "title", "genres"]:
            sys.exit("compare-lightfm: %s: expected a MovieLens movies.csv header (movieId,title,genres), got %r" %
                     (path, ",".join(header)))
        for n, row in enumerate(rows, 2):
            try:
                genres[int(row[0])] = [g for g in row[2].split("|") if g and g != "(no genres listed)"]
            except (ValueError, IndexError):
                sys.exit("compare-lightfm: %s:%d: expected movieId,title,genres, got %r" % (path, n, row))
    return genres


def item_feature_matrix(kind, item_ids, genres):
    """The item features of `kind` as LightFM's Dataset(item_identity_features=...) builds them with
    build_item_features(normalize=True): identity features first (feature n is item n), then one
    feature per genre in the order genres first appear in movies.csv, every row scaled to sum 1; a row
    without features (genres only, a movie without genres) stays empty: its representation is 0 (the
    Dataset refuses to normalise such a row; warploss-train keeps it empty, and so does this).
    Returns (CSR float32 [items x features] or None for 'none', LightFM's identity; the features' names
    as warploss-train names them, item:ID and genre:G; a description)."""
    import numpy as np
    import scipy.sparse as sp

    if kind == "none":
        return None, None, "identity only (%d features)" % len(item_ids)
    identity = kind == "genres+identity"
    vocab = {}
    for gs in genres.values():
        for g in gs:
            vocab.setdefault(g, len(vocab))
    base = len(item_ids) if identity else 0
    rows, cols = [], []
    for n, i in enumerate(item_ids):
        if identity:
            rows.append(n)
            cols.append(n)
        for g in genres.get(int(i), []):
            rows.append(n)
            cols.append(base + vocab[g])
    F = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(item_ids), base + len(vocab)))
    F.sum_duplicates()
    sums = np.asarray(F.sum(axis=1)).reshape(-1)
    empty = int((sums == 0).sum())
    F = sp.diags(np.where(sums > 0, 1.0 / np.maximum(sums, 1e-30), 0.0).astype(np.float32)) @ F
    names = (["item:%d" % i for i in item_ids] if identity else []) + ["genre:" + g for g in vocab]
    return F.tocsr().astype(np.float32), names, "%d features (%s%d genres), rows summing to 1%s" % (
        F.shape[1], "%d identity + " % base if identity else "", len(vocab),
        "; %d empty rows (no genres): representation 0" % empty if empty else "")


def same_features(export, F, names, item_ids):
    """Whether warploss-train's item feature matrix (its --export-npy item_features_*.npy and
    item_feature_names.txt) gives every item of the catalogue the features and weights of F, by name.
    Returns a line saying so, or what differs."""
    import numpy as np

    files = [os.path.join(export, "item_features_%s.npy" % x) for x in ("indptr", "indices", "data")]
    names_file = os.path.join(export, "item_feature_names.txt")
    if not all(os.path.isfile(f) for f in files + [names_file]):
        return "NOT CHECKED: %s has no item feature matrix" % export
    indptr, indices, data = (np.load(f) for f in files)
    with open(names_file, encoding="utf-8") as f:
        theirs = f.read().splitlines()
    iid = np.load(os.path.join(export, "item_ids.npy"))
    row_of = {int(x): r for r, x in enumerate(iid)}
    differ, example = 0, None
    for n, i in enumerate(item_ids):
        r = row_of.get(int(i))
        mine = {names[F.indices[k]]: float(F.data[k]) for k in range(F.indptr[n], F.indptr[n + 1])}
        other = {} if r is None else {theirs[indices[k]]: float(data[k]) for k in range(indptr[r], indptr[r + 1])}
        if r is None or mine.keys() != other.keys() or any(abs(mine[x] - other[x]) > 1e-6 for x in mine):
            differ += 1
            example = example or (int(i), mine, other if r is not None else "not in its catalogue")
    if differ:
        return "DIFFER from LightFM's for %d of %d items, e.g. item %d: LightFM %s, warploss %s" % (
            (differ, len(item_ids)) + example)
    return "the same as LightFM's for all %d items (names and weights)" % len(item_ids)


# ------------------------------------------------------------------ the evaluator (numpy only)


def evaluate(user_emb, item_emb, item_bias, train_pairs, test_pairs, k, ties_above=False):
    """LightFM's precision_at_k, recall_at_k, auc_score, reciprocal_rank (train_interactions given,
    means over users with test pairs) from the embeddings. Pairs are dense (user, item) index arrays.
    rank of a test item = items that are not training positives of the user, other than it, with a
    strictly higher score (scores float32: dot(U[u], V[i]) + b[i]); ties_above: a higher or equal
    score (an item tied with others then ranks below them all, not above as in LightFM)."""
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
            if ties_above:
                ranks = (s[None, :] >= s[items][:, None]).sum(axis=1).astype(np.float64) - 1.0
            else:
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


def evaluate_among(user_rep, item_rep, item_bias, among, train_pairs, test_pairs, k, ties_above=False):
    """evaluate() with the catalogue cut to the items `among` (dense indices): only they are ranked and
    counted; every test item must be one of them, and training pairs outside them drop out (they are
    no candidates to exclude)."""
    import numpy as np

    pos = np.full(len(item_rep), -1, dtype=np.int64)
    pos[among] = np.arange(len(among))
    tr_u, tr_i = train_pairs
    te_u, te_i = test_pairs
    if (pos[te_i] < 0).any():
        raise ValueError("a test item is not among the items ranked")
    keep = pos[tr_i] >= 0
    return evaluate(user_rep, item_rep[among], item_bias[among], (tr_u[keep], pos[tr_i[keep]]), (te_u, pos[te_i]),
                    k, ties_above)


def distinct_rows(item_rep, item_bias, among):
    """How many of the items `among` have a representation (row and bias) of their own, bit for bit."""
    import numpy as np

    rows = np.concatenate([np.asarray(item_rep, dtype=np.float32)[among],
                           np.asarray(item_bias, dtype=np.float32).reshape(-1, 1)[among]], axis=1)
    return len(np.unique(rows, axis=0))


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


def train_lightfm(args, num_users, num_items, train, feature_sets=(None,)):
    """LightFM's WARP on the training pairs, one model per entry of feature_sets (item features, CSR
    [num_items x F]; None: LightFM's identity), each given its features in every fit_partial. The
    models take their epochs in turn (epoch 1 of each, then epoch 2, ...), so that a change in the
    machine's load falls on all of them alike. Returns per model its representations
    (get_user_representations, get_item_representations(features): without features these are its
    tables), the seconds of each fit_partial(epochs=1) and its CPU seconds (the process's, all threads:
    less moved by other work on the machine)."""
    import numpy as np
    import scipy.sparse as sp
    from lightfm import LightFM

    tr_u, tr_i = train
    X = sp.coo_matrix((np.ones(len(tr_u), dtype=np.float32), (tr_u, tr_i)), shape=(num_users, num_items))
    X = X.tocsr().tocoo()
    models = [LightFM(no_components=args.dim, loss="warp", learning_schedule="adagrad", learning_rate=args.lr,
                      max_sampled=args.negatives, random_state=args.seed) for _ in feature_sets]
    seconds = [[] for _ in feature_sets]
    cpu = [[] for _ in feature_sets]
    for _ in range(args.epochs):
        for model, features, secs, cpus in zip(models, feature_sets, seconds, cpu):
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit_partial(X, item_features=features, epochs=1, num_threads=args.threads)
            secs.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    out = []
    for model, features, secs, cpus in zip(models, feature_sets, seconds, cpu):
        # the user bias is the same for all of a user's items: no rank depends on it
        _, user_rep = model.get_user_representations()
        item_bias, item_rep = model.get_item_representations(features)
        out.append((user_rep, item_rep, item_bias, secs, cpus))
    return out


def train_warploss(args, work, user_ids, item_ids, name="warploss", extra=(), exact=True):
    """warploss-train on work's train.tsv and test.tsv with the shared settings and `extra` arguments;
    its --export-npy tables (the representations p, q, b for a feature model) with rows in this script's
    dense order. exact: its users and items must be user_ids and item_ids; otherwise it must have every
    user, and an item it lacks gets a row of zeros and False in the returned mask (and extra items are
    left out). Returns (users, items, biases, items present, seconds of each epoch, its last metrics)."""
    import numpy as np

    export = os.path.join(work, name + "-npy")
    metrics = os.path.join(work, name + "-metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    cmd = [args.trainer, "--data", os.path.join(work, "train.tsv"), "--test", os.path.join(work, "test.tsv"),
           "--format", "tsv", "--seed", str(args.seed), "--dim", str(args.dim), "--epochs", str(args.epochs),
           "--negatives", str(args.negatives), "--lr", repr(args.lr), "--optimizer", "adagrad", "--k", str(args.k),
           "--eval-every", "1", "--metrics", metrics, "--export-npy", export, "--quiet"] + list(extra)
    if args.device:
        cmd += ["--device", args.device]
    cmd += args.trainer_args.split()
    run(cmd, os.path.join(work, name + "-train.log"))
    ue = np.load(os.path.join(export, "user_embeddings.npy"))
    ie = np.load(os.path.join(export, "item_embeddings.npy"))
    ib = np.load(os.path.join(export, "item_biases.npy")).reshape(-1)
    uid = np.load(os.path.join(export, "user_ids.npy"))
    iid = np.load(os.path.join(export, "item_ids.npy"))
    if len(ue) != len(uid) or len(ie) != len(iid) or len(ib) != len(iid):
        sys.exit("compare-lightfm: %s: the tables' rows (%d users, %d items, %d biases) differ from the ids' "
                 "(%d, %d)" % (export, len(ue), len(ie), len(ib), len(uid), len(iid)))
    # reorder warploss's rows (its own dense order) to this script's dense ids (sorted original ids)
    upos = {int(x): n for n, x in enumerate(uid)}
    ipos = {int(x): n for n, x in enumerate(iid)}
    missing_u = [int(u) for u in user_ids if int(u) not in upos]
    missing_i = [int(i) for i in item_ids if int(i) not in ipos]
    if (exact and (missing_u or missing_i or len(uid) != len(user_ids) or len(iid) != len(item_ids))) or missing_u:
        sys.exit("compare-lightfm: warploss-train's ids differ from the split's (%d users, %d items exported; "
                 "%d, %d here; e.g. %s missing)" % (len(uid), len(iid), len(user_ids), len(item_ids),
                                                     (missing_u[:5] + missing_i[:5]) or "none"))
    ue = ue[[upos[int(u)] for u in user_ids]]
    present = np.array([int(i) in ipos for i in item_ids], dtype=bool)
    rows = np.array([ipos.get(int(i), 0) for i in item_ids], dtype=np.int64)
    ie = np.where(present[:, None], ie[rows], 0.0).astype(np.float32)
    ib = np.where(present, ib[rows], 0.0).astype(np.float32)
    seconds, own = [], None
    with open(metrics) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("seconds") and rec.get("epoch", 0) >= 1:
                seconds.append(float(rec["seconds"]))
            own = rec
    return ue, ie, ib, present, seconds, own


# ------------------------------------------------------------------ main


def median(xs):
    import numpy as np

    return float(np.median(xs)) if xs else float("nan")


def main_cold(args, work):
    """--cold-items: warm and cold metrics and seconds per epoch of each tool with each --item-features set."""
    import numpy as np

    source, train, warm_test, cold_test, cold_ids = split_cold(args, work)
    genres = read_movies(args.movies)
    user_ids = np.array(sorted({u for u, _ in train}), dtype=np.int64)
    warm_ids = sorted({i for _, i in train})
    # the catalogue: every movie of movies.csv and every item rated (all of them are in movies.csv for MovieLens)
    item_ids = np.array(sorted(set(genres) | set(warm_ids) | set(cold_ids) | {i for _, i in warm_test}),
                        dtype=np.int64)
    um = {int(u): n for n, u in enumerate(user_ids)}
    im = {int(i): n for n, i in enumerate(item_ids)}
    warm = np.array([im[i] for i in warm_ids], dtype=np.int64)
    cold = np.array([im[i] for i in cold_ids], dtype=np.int64)
    warm_set = set(warm_ids)

    def dense(pairs):
        a = np.array([(um[u], im[i]) for u, i in pairs], dtype=np.int64).reshape(-1, 2)
        return a[:, 0], a[:, 1]

    tr = dense(train)
    te_warm = dense([(u, i) for u, i in warm_test if u in um and i in warm_set])
    te_cold = dense([(u, i) for u, i in cold_test if u in um])
    print("data: %s" % source)
    print("items: %s (%d movies) + the rated ones: a catalogue of %d items, %d warm (in the training pairs), "
          "%d cold, %d neither" % (args.movies, len(genres), len(item_ids), len(warm), len(cold),
                                   len(item_ids) - len(warm) - len(cold)))
    print("split: %d users, %d train pairs; warm test %d pairs (%d dropped: their item lost all its pairs to the "
          "hold-out, or their user has no training pair); cold test %d pairs (%d dropped: user without training "
          "pairs)" % (len(user_ids), len(tr[0]), len(te_warm[0]), len(warm_test) - len(te_warm[0]), len(te_cold[0]),
                      len(cold_test) - len(te_cold[0])))
    print("evaluation: warm held-out pairs ranked among the %d warm items (training items excluded); cold "
          "held-out pairs ranked among the %d cold items" % (len(warm), len(cold)))
    print("settings: dim %d, epochs %d, negatives/max_sampled %d, lr %g, adagrad, seed %d, k %d, "
          "LightFM num_threads %d" % (args.dim, args.epochs, args.negatives, args.lr, args.seed, args.k,
                                      args.threads))
    sys.stdout.flush()

    results = []  # (tool, kind, warm metrics, cold metrics or None, seconds per epoch)
    ties = []  # lines about the settings whose ranked items share representations
    cpu_seconds = {}  # LightFM's CPU seconds per epoch by feature set

    def record(tool, kind, P, Q, b, secs, cold_ok=True):
        w = evaluate_among(P, Q, b, warm, tr, te_warm, args.k)
        c = evaluate_among(P, Q, b, cold, tr, te_cold, args.k) if cold_ok else None
        results.append((tool, kind, w, c, secs))
        for side, among, te, m in (("warm", warm, te_warm, w), ("cold", cold, te_cold, c)):
            n = distinct_rows(Q, b, among) if m else len(among)
            if n < len(among):
                a = evaluate_among(P, Q, b, among, tr, te, args.k, ties_above=True)
                ties.append("  %s %s, %s: %d distinct of %d; ties counted above: p@%d %.4f (not %.4f), AUC %.4f "
                            "(not %.4f)" % (tool, kind, side, n, len(among), args.k, a["precision"],
                                            m["precision"], a["auc"], m["auc"]))
        print("  %-8s %-16s warm p@%d %.4f AUC %.4f | cold %s | %.3f s/epoch" %
              (tool, kind, args.k, w["precision"], w["auc"],
               "p@%d %.4f AUC %.4f" % (args.k, c["precision"], c["auc"]) if c else "-", median(secs)))
        sys.stdout.flush()

    if args.only != "warploss":
        features = []
        for kind in args.item_features:
            F, _, what = item_feature_matrix(kind, item_ids, genres)
            print("LightFM, %s: %s" % (kind, what))
            features.append(F)
        print("LightFM: training the %d models, their epochs in turn" % len(features))
        sys.stdout.flush()
        for kind, (P, Q, b, secs, cpus) in zip(args.item_features,
                                                 train_lightfm(args, len(user_ids), len(item_ids), tr, features)):
            record("LightFM", kind, P, Q, b, secs)
            cpu_seconds[kind] = cpus
    if args.only != "lightfm":
        # genres+identity twice: with LightFM's matrix (--normalise-rows --cold-identity: every row to sum 1,
        # the cold items with their identity feature) and with warploss-train's own (the identity at weight 1
        # and only for items with a training pair, the genres to sum 1)
        runs = []
        for kind in args.item_features:
            if kind == "genres+identity":
                runs.append((kind + " (LightFM's rows)", kind,
                             ["--item-features", args.movies, "--normalise-rows", "--cold-identity"]))
            runs.append((kind, kind, {"genres+identity": ["--item-features", args.movies],
                                      "genres": ["--item-features", args.movies, "--no-identity"], "none": []}[kind]))
        for label, kind, extra in runs:
            print("warploss, %s: warploss-train %s" % (label, " ".join(extra) or "(no --item-features: the plain "
                                                         "model, its catalogue the training items)"))
            name = "warploss-" + label.replace("+", "-").replace(" ", "-").replace("'", "").replace("(", "").replace(
                ")", "")
            # --eval-every 1: its --metrics has a line, with that epoch's seconds, for every epoch
            P, Q, b, present, secs, _ = train_warploss(args, work, user_ids, item_ids, name=name, extra=extra,
                                                       exact=False)
            if not present[warm].all():
                sys.exit("compare-lightfm: warploss-train (%s) lacks %d warm items" % (kind,
                                                                                      int((~present[warm]).sum())))
            if kind != "none" and not present[cold].all():
                sys.exit("compare-lightfm: warploss-train (%s) lacks %d cold items: are the items of %s not in its "
                         "catalogue?" % (kind, int((~present[cold]).sum()), args.movies))
            if kind != "none" and label != "genres+identity":
                F, names, _ = item_feature_matrix(kind, item_ids, genres)
                print("  its item features: %s" % same_features(os.path.join(work, name + "-npy"), F, names,
                                                                 item_ids))
            record("warploss", label, P, Q, b, secs, cold_ok=bool(present[cold].all()))

    k = args.k
    print()
    head = ("%-42s | %9s %8s %7s %7s | %9s %8s %7s %7s | %9s %8s" %
            ("setting", "warm p@%d" % k, "r@%d" % k, "AUC", "MRR", "cold p@%d" % k, "r@%d" % k, "AUC", "MRR",
             "s/epoch", "vs none"))
    print(head)
    print("-" * len(head))
    for tool, kind, w, c, secs in results:
        base = [median(r[4]) for r in results if r[0] == tool and r[1] == "none"]
        ratio = "%8.2fx" % (median(secs) / base[0]) if base and base[0] > 0 else "%9s" % "-"
        cold_cols = ("%9.4f %8.4f %7.4f %7.4f" % (c["precision"], c["recall"], c["auc"], c["mrr"]) if c else
                     "%9s %8s %7s %7s" % ("-", "-", "-", "-"))
        print("%-42s | %9.4f %8.4f %7.4f %7.4f | %s | %9.3f %s" %
              ("%s %s" % (tool, kind), w["precision"], w["recall"], w["auc"], w["mrr"], cold_cols, median(secs),
               ratio))
    print("test users: warm %s, cold %s" % (" / ".join(sorted({str(r[2]["users"]) for r in results})),
                                            " / ".join(sorted({str(r[3]["users"]) for r in results if r[3]})) or "-"))
    print("s/epoch: the median over the epochs (LightFM: fit_partial(epochs=1); warploss: its --metrics "
          "\"seconds\"); vs none: over the same tool's none")
    if cpu_seconds:
        base = median(cpu_seconds.get("none", []))
        print("LightFM CPU s/epoch (all threads): %s" % ", ".join(
            "%s %.3f%s" % (kind, median(c), " (%.2fx)" % (median(c) / base) if base > 0 else "")
            for kind, c in cpu_seconds.items()))
    if ties:
        print("items sharing one representation (same features, no identity) tie; LightFM's rank counts only "
              "strictly higher scores, so a tied held-out item ranks above all its ties:")
        print("\n".join(ties))
    if any(r[3] is None for r in results):
        print("cold '-': that model has no rows for the cold items (warploss without --item-features knows only "
              "the training items)")


def main(argv):
    args = parse_args(argv)
    if not args.synthetic:
        args.data = os.path.normpath(args.data)
    ensure_interpreter(args, argv)
    import numpy as np

    if args.only != "lightfm" and not os.access(args.trainer, os.X_OK):
        sys.exit("compare-lightfm: %s is not an executable (build it: meson compile -C build; or --trainer PATH)" %
                 args.trainer)
    work = args.work or tempfile.mkdtemp(prefix="compare-lightfm-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.cold_items:
            main_cold(args, work)
            if args.work:
                print("files: %s" % args.work)
            return
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
        own = None
        if args.only != "warploss":
            ue, ie, ib, secs, _ = train_lightfm(args, len(user_ids), len(item_ids), tr)[0]
            results["LightFM"] = (evaluate(ue, ie, ib, tr, te, args.k), secs)
        if args.only != "lightfm":
            ue, ie, ib, _, secs, own = train_warploss(args, work, user_ids, item_ids)
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
