#!/usr/bin/env python3
"""Tests of tools/warploss-train, run as a user would (numpy optional).

Usage: test_train.py PATH-TO-warploss-train

Runs the trainer under PoCL (POCL_DEVICES=pthread unless already set) with a
temporary WARPLOSS_CACHE_DIR, on small synthetic sets: it learns (precision@10
far above a random ranking), one seed gives one model, save + load + more
epochs equals an uninterrupted run bit for bit, damaged model files are
refused, the npy files load in numpy with the right shapes and values, data
errors name the file and line, --data as a folder of parts or a glob
equals their concatenation, and the flags' exit statuses; and the hybrid
model's flags on a small generated genre set (--item-features, --cold-items:
features rank cold items far better than none, --weights, --export-npy's
feature files, save and load with feature names, bad feature files). Exit 0
pass, 1 fail.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import lsan_tracer

TOOL = None
ENV = None
failures = []
# Small enough for a few seconds a run under PoCL on 2 cores.
SYN = ["--synthetic", "600,900,24000"]


def run(*args, timeout=240):
    return lsan_tracer.run([TOOL] + [str(a) for a in args], env=ENV, timeout=timeout)


def check(cond, what, detail=""):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what + (": " + detail if detail else ""))
        failures.append(what)
    sys.stdout.flush()
    return cond


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_pairs(path):
    pairs = []
    with open(path) as f:
        for line in f:
            u, i = line.split("\t")
            pairs.append((int(u), int(i)))
    return pairs


def test_flags():
    rc, out, err = run("--help")
    check(rc == 0 and "--data" in out and "--synthetic" in out and "--recommend" in out, "--help exits 0", err)
    for args in (["--bogus"], ["--dim", "abc"], ["--epochs", "-1"], ["--optimizer", "adam"], ["stray"],
                 ["--synthetic", "10,20"], ["--format", "xml"], ["--test-fraction", "1.5"], ["--dim"]):
        rc, out, err = run(*args)
        check(rc == 2 and err.strip(), "usage error %s exits 2" % " ".join(args), "rc %d %s" % (rc, err))


def test_learning(tmp):
    split = os.path.join(tmp, "split")
    metrics = os.path.join(tmp, "metrics.jsonl")
    npy = os.path.join(tmp, "npy")
    plot = os.path.join(tmp, "plot.svg")
    rc, out, err = run(*SYN, "--epochs", 5, "--write-split", split, "--metrics", metrics, "--export-npy", npy,
                       "--plot", plot, "--recommend", 3)
    if not check(rc == 0, "synthetic run exits 0", err + out):
        return
    lines = [json.loads(l) for l in open(metrics)]
    check(len(lines) == 5, "--metrics: one line per epoch (eval every epoch)", str(len(lines)))
    keys = {"epoch", "loss", "seconds", "precision_at_k", "recall_at_k", "auc", "mrr", "k", "positives_per_second"}
    check(all(keys <= set(l) for l in lines), "--metrics lines have the fields", str(lines[-1]))
    check([l["epoch"] for l in lines] == [1, 2, 3, 4, 5], "--metrics epochs 1..5")
    # A random ranking's expected precision@k for user u: t_u / (items - train_u) (each of the k slots holds a
    # test item with that probability), averaged over the test users.
    train = read_pairs(os.path.join(split, "train.tsv"))
    test = read_pairs(os.path.join(split, "test.tsv"))
    items = {i for _, i in train}
    ntrain, ntest = {}, {}
    for u, _ in train:
        ntrain[u] = ntrain.get(u, 0) + 1
    for u, _ in test:
        ntest[u] = ntest.get(u, 0) + 1
    random_p = sum(t / (len(items) - ntrain[u]) for u, t in ntest.items()) / len(ntest)
    p = lines[-1]["precision_at_k"]
    check(p >= 5 * random_p, "precision@10 %.4f >= 5x random %.4f" % (p, random_p))
    check(lines[-1]["auc"] > 0.75, "AUC %.3f > 0.75" % lines[-1]["auc"])
    check(lines[-1]["loss"] < lines[0]["loss"], "the loss falls (%.4f -> %.4f)" % (lines[0]["loss"],
                                                                               lines[-1]["loss"]))
    svg = open(plot).read()
    check(svg.startswith("<?xml") and "</svg>" in svg and "<polyline" in svg, "--plot writes an SVG")
    # --recommend 3: 10 lines of items with scores, none of them a training item of user 3.
    recs = [l.split() for l in out.splitlines() if l.strip().split()[:1] and l.split()[0].isdigit()
            and "item" in l]
    rec_items = [int(r[2]) for r in recs]
    train3 = {i for u, i in train if u == 3}
    check(len(rec_items) == 10 and not (set(rec_items) & train3), "--recommend 3: 10 new items", out[-800:])
    test_npy(npy, train, test, rec_items, [float(r[4]) for r in recs])


def test_npy(npy, train, test, rec_items, rec_scores):
    try:
        import numpy as np
    except ImportError:
        print("note: numpy is missing; the npy checks are skipped (CI installs python3-numpy)")
        return
    U = np.load(os.path.join(npy, "user_embeddings.npy"))
    V = np.load(os.path.join(npy, "item_embeddings.npy"))
    b = np.load(os.path.join(npy, "item_biases.npy"))
    uid = np.load(os.path.join(npy, "user_ids.npy"))
    iid = np.load(os.path.join(npy, "item_ids.npy"))
    check(U.dtype == np.float32 and V.dtype == np.float32 and b.dtype == np.float32, "npy tables are float32")
    check(uid.dtype == np.int64 and iid.dtype == np.int64, "npy ids are int64")
    # The dense ids cover every user and item of the data: those of the split's
    # pairs, and items whose every pair was held out (their test pairs are left
    # out of the split, so they appear in neither file).
    users = {u for u, _ in train + test}
    items = {i for _, i in train + test}
    check(U.shape == (len(users), 32) and V.shape == (len(iid), 32) and b.shape == (len(iid),),
          "npy shapes [U x 32], [I x 32], [I]", "%s %s %s" % (U.shape, V.shape, b.shape))
    check(set(uid.tolist()) == users and set(iid.tolist()) >= items and len(uid) == len(users)
          and len(set(iid.tolist())) == len(iid),
          "npy ids are the original ids")
    check(bool(np.all(np.isfinite(U))) and bool(np.any(b != 0)), "npy values finite, biases trained")
    # The values: user 3's scores from the npy tables give --recommend's list.
    row = int(np.where(uid == 3)[0][0])
    scores = V @ U[row] + b
    index = {int(x): j for j, x in enumerate(iid.tolist())}
    for u, i in train:
        if u == 3:
            scores[index[i]] = -np.inf
    top = [int(iid[j]) for j in np.argsort(-scores, kind="stable")[:10]]
    check(top == rec_items or set(top) == set(rec_items), "npy tables reproduce --recommend", "%s %s" % (top,
                                                                                                    rec_items))
    check(np.allclose(sorted(scores[[index[i] for i in rec_items]], reverse=True), rec_scores, atol=2e-4),
          "npy scores match --recommend's")


def test_reproducible(tmp):
    a, b, full, half, resumed = (os.path.join(tmp, n) for n in ("a.wlm", "b.wlm", "full.wlm", "half.wlm",
                                                                 "resumed.wlm"))
    common = SYN + ["--seed", 7, "--eval-every", 0, "--quiet"]
    r1 = run(*common, "--epochs", 2, "--save", a)
    r2 = run(*common, "--epochs", 2, "--save", b)
    if check(r1[0] == 0 and r2[0] == 0, "two seeded runs exit 0", r1[2] + r2[2]):
        check(read_bytes(a) == read_bytes(b), "one seed, one model (identical files)")
    r3 = run(*common, "--epochs", 4, "--save", full)
    r4 = run(*common, "--epochs", 2, "--save", half)
    r5 = run(*SYN, "--eval-every", 0, "--quiet", "--load", half, "--epochs", 2, "--save", resumed)
    if check(r3[0] == 0 and r4[0] == 0 and r5[0] == 0, "save, load, resume exit 0", r3[2] + r4[2] + r5[2]):
        check(read_bytes(half) == read_bytes(a), "the 2-epoch model is the same again")
        check(read_bytes(resumed) == read_bytes(full), "2 epochs + load + 2 epochs == 4 epochs, bit for bit")
        # The resumed and the uninterrupted run report the same metrics.
        check(r5[1].strip().splitlines()[-1] == r3[1].strip().splitlines()[-1], "same final metrics",
              r5[1] + r3[1])
    # An explicit option that contradicts the file is a usage error.
    rc, out, err = run(*SYN, "--load", half, "--dim", 16, "--epochs", 1)
    check(rc == 2 and "model file" in err, "--load with another --dim exits 2", err)
    # Damaged files: truncated, a flipped byte, empty, not a model.
    data = read_bytes(half)
    for name, damaged in (("truncated", data[:len(data) // 2]), ("flipped byte",
                                                                  data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x10]) + data[len(data) // 2 + 1:]),
                          ("empty", b""), ("not a model", b"user,item\n1,2\n" * 10)):
        path = os.path.join(tmp, "damaged.wlm")
        with open(path, "wb") as f:
            f.write(damaged)
        rc, out, err = run(*SYN, "--load", path, "--epochs", 1)
        check(rc == 1 and "damaged.wlm" in err and len(err.strip()) > 20 and "Traceback" not in err,
              "%s model file refused with exit 1" % name, "rc %d: %s" % (rc, err.strip()))
        print("     " + err.strip())
    # --load on other data is refused.
    rc, out, err = run("--synthetic", "500,900,20000", "--load", half, "--epochs", 1)
    check(rc == 1 and "does not fit" in err, "--load on other data exits 1", err)


def interrupt_run(path):
    p = subprocess.Popen([TOOL, "--synthetic", "600,900,24000", "--epochs", "200", "--eval-every", "0", "--save",
                          path], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    for line in p.stdout:
        if line.startswith("epoch"):
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, err


def test_interrupt(tmp):
    path = os.path.join(tmp, "int.wlm")
    for _ in range(3):
        rc, err = interrupt_run(path)
        if not lsan_tracer.tracer_crashed(err):
            break
    check(rc == 130 and "interrupted" in err and os.path.exists(path), "Ctrl-C stops, exit 130, saved",
          "rc %s %s" % (rc, err))
    rc, out, err = run("--synthetic", "600,900,24000", "--load", path, "--epochs", 1, "--quiet")
    check(rc == 0, "the interrupted model loads and trains on", err)


def test_data_errors(tmp):
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write("user,item\n")
        for u in range(40):
            for i in range(12):
                f.write("%d,%d\n" % (u, (u * 7 + i * 3) % 50))
        f.write("7,notanumber\n")
        f.write("8,9\n")
    bad_line = 1 + 40 * 12 + 1
    rc, out, err = run("--data", bad, "--epochs", 1)
    check(rc == 1 and ("bad.csv:%d" % bad_line) in err, "a malformed line: file:line and exit 1", err)
    rc, out, err = run("--data", bad, "--epochs", 1, "--skip-bad-lines", "--dim", 8, "--negatives", 10)
    check(rc == 0 and "1 bad lines skipped" in out, "--skip-bad-lines counts and goes on", out + err)
    rc, out, err = run("--data", os.path.join(tmp, "missing.csv"))
    check(rc == 1 and "missing.csv" in err, "a missing file exits 1", err)


def test_data_parts(tmp):
    """--data as a folder of parts or a glob: the same run as on their concatenation."""
    import random
    rng = random.Random(11)
    lines = ["%d,%d,%d,%d" % (u, i, rng.randint(1, 5), 1000 + u * 100 + i)
             for u in range(1, 121) for i in sorted(rng.sample(range(1, 301), 18))]
    header = "userId,movieId,rating,timestamp\n"
    whole = os.path.join(tmp, "whole.csv")
    with open(whole, "w") as f:
        f.write(header + "\n".join(lines) + "\n")
    parts = os.path.join(tmp, "parts")
    os.mkdir(parts)
    cut = [0, 700, 1500, len(lines)]
    for k in range(3):  # headers are per part: the 2nd part has none, its format is detected from its lines
        with open(os.path.join(parts, "part-%d.csv" % k), "w") as f:
            f.write((header if k != 1 else "") + "\n".join(lines[cut[k]:cut[k + 1]]) + "\n")
    with open(os.path.join(parts, "part-1-empty.csv"), "w") as f:
        f.write(header)  # no interactions: fine among others
    with open(os.path.join(parts, ".hidden"), "w") as f:
        f.write("not,a,part\n")
    os.mkdir(os.path.join(parts, "sub"))
    common = ["--epochs", 2, "--dim", 8, "--negatives", 10, "--eval-every", 0]
    runs = {}
    for name, data in (("file", whole), ("folder", parts), ("glob", os.path.join(parts, "part-*.csv"))):
        model = os.path.join(tmp, "parts-%s.wlm" % name)
        runs[name] = run("--data", data, *common, "--save", model) + (model,)
        check(runs[name][0] == 0, "--data as a %s exits 0" % name, runs[name][2])
    if all(r[0] == 0 for r in runs.values()):
        for name in ("folder", "glob"):
            out, model = runs[name][1], runs[name][3]
            check("(4 parts, movielens-csv): %d lines" % len(lines) in out, "%s: the summary counts 4 parts" % name,
                  out.splitlines()[0])
            # the split line and the final metrics (the lines between hold times and paths)
            same = [out.splitlines()[k] == runs["file"][1].splitlines()[k] for k in (1, -1)]
            check(all(same), "%s: the same split and final metrics as the whole file" % name, out + runs["file"][1])
            check(read_bytes(model) == read_bytes(runs["file"][3]), "%s: the same model bytes as the whole file" % name)
    # A malformed line in the 2nd part names that part and its line.
    bad = os.path.join(tmp, "bad-parts")
    os.mkdir(bad)
    with open(os.path.join(bad, "a.csv"), "w") as f:
        f.write("1,2\n2,3\n")
    with open(os.path.join(bad, "b.csv"), "w") as f:
        f.write("user,item\n4,5\n6,seven\n")
    rc, out, err = run("--data", bad, "--epochs", 1)
    check(rc == 1 and os.path.join(bad, "b.csv") + ":3:" in err, "a malformed line in a part: part:line, exit 1", err)
    # An empty folder, a pattern matching nothing, a missing path, parts all without interactions.
    empty = os.path.join(tmp, "empty-parts")
    os.mkdir(empty)
    nothing = os.path.join(tmp, "nothing-*.csv")
    for data, what in ((empty, "an empty folder"), (nothing, "a pattern matching nothing"),
                       (os.path.join(tmp, "missing-parts"), "a missing path")):
        rc, out, err = run("--data", data, "--epochs", 1)
        check(rc == 1 and data in err, "%s exits 1 naming it" % what, err)
    with open(os.path.join(empty, "only-header.csv"), "w") as f:
        f.write("user,item\n")
    rc, out, err = run("--data", empty, "--epochs", 1)
    check(rc == 1 and "no interactions" in err and empty in err, "parts without interactions exit 1", err)


# ---- the hybrid model (--item-features, --cold-items, --weights) -------------------------------------------------

GENRES = ["Drama", "Comedy", "Horror", "Western", "Sci-Fi", "Musical"]


def write_genre_set(tmp):
    """A set where taste follows genre: 240 users each like one genre and mostly pick its items.

    Writes ratings.csv (MovieLens layout; the rating is 5 for the liked genre, 1 otherwise), movies.csv (each
    item's genre and a title with a comma, quoted; 4 items no user picked) and returns their paths."""
    import random
    rng = random.Random(7)
    items = list(range(1000, 1360))
    genre = {i: GENRES[i % len(GENRES)] for i in items + [2000, 2001, 2002, 2003]}
    by_genre = {g: [i for i in items if genre[i] == g] for g in GENRES}
    ratings = os.path.join(tmp, "ratings.csv")
    with open(ratings, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for u in range(1, 241):
            liked = GENRES[u % len(GENRES)]
            chosen = set(rng.sample(by_genre[liked], 14)) | set(rng.sample(items, 3))
            for i in sorted(chosen):
                f.write("%d,%d,%d,%d\n" % (u, i, 5 if genre[i] == liked else 1, 1000000 + i))
    movies = os.path.join(tmp, "movies.csv")
    with open(movies, "w") as f:
        f.write("movieId,title,genres\n")
        for i in sorted(genre):
            f.write('%d,"Film %d, The (%d)",%s\n' % (i, i, 1990 + i % 30, genre[i]))
    return ratings, movies


def cold_auc(out):
    line = [l for l in out.splitlines() if l.startswith("cold: ")]
    return float(line[-1].split("AUC")[1].split()[0]) if line else None


def test_features(tmp):
    ratings, movies = write_genre_set(tmp)
    common = ["--data", ratings, "--dim", 16, "--negatives", 20, "--batch", 256, "--lr", 0.1, "--epochs", 12,
              "--eval-every", 0, "--cold-items", 0.25]
    # Without features, cold items are ranked by untrained vectors: about chance.
    rc, out, err = run(*common)
    if not check(rc == 0 and "warm: " in out and "cold: " in out, "--cold-items reports warm and cold metrics",
                 out + err):
        return
    none = cold_auc(out)
    check("cold items: 90 of 360 items" in out, "--cold-items 0.25 holds out 90 of 360 items", out)
    metrics = os.path.join(tmp, "features.jsonl")
    npy = os.path.join(tmp, "features-npy")
    model = os.path.join(tmp, "features.wlm")
    rc, out, err = run(*common, "--item-features", movies, "--metrics", metrics, "--export-npy", npy, "--save", model,
                       "--recommend", 1)
    if not check(rc == 0, "--item-features movies.csv exits 0", out + err):
        return
    feat = cold_auc(out)
    print("     cold AUC without features %.3f, with genres %.3f" % (none, feat))
    check(none < 0.65 and feat > 0.8 and feat > none + 0.2, "features rank cold items well (AUC %.3f, none %.3f)" % (
        feat, none))
    check("4 items only in the feature files added" in out and "364 items x 370 features (364 identity + 6" in out,
          "feature-only items join the catalogue; identity + 6 genres", out)
    line = json.loads(open(metrics).read().splitlines()[-1])
    check({"cold_precision_at_k", "cold_recall_at_k", "cold_auc", "cold_mrr", "cold_users"} <= set(line)
          and abs(line["cold_auc"] - feat) < 1e-3, "--metrics has the cold metrics", str(line))
    recs = [l for l in out.splitlines() if l.split()[:1] and l.split()[0].isdigit() and " item " in l]
    check(len(recs) == 10 and all(", The (" in l for l in recs), "--recommend prints the titles", "\n".join(recs))
    names = test_feature_npy(npy, 364, 370)
    # Loaded without the feature files: the model's own matrix and names; with them: checked against the model.
    npy2 = os.path.join(tmp, "features-npy2")
    rc, out, err = run(*common, "--load", model, "--epochs", 0, "--export-npy", npy2)
    check(rc == 0 and cold_auc(out) is not None and abs(cold_auc(out) - feat) < 1e-3,
          "--load without the feature files evaluates the same", out + err)
    if names is not None and os.path.exists(os.path.join(npy2, "item_feature_names.txt")):
        check(open(os.path.join(npy2, "item_feature_names.txt")).read().split("\n")[:-1] == names,
              "--load + --export-npy keeps the feature names")
    rc, out, err = run(*common, "--load", model, "--epochs", 1, "--item-features", movies)
    check(rc == 0, "--load with the same feature files trains on", out + err)
    rc, out, err = run(*common, "--load", model, "--epochs", 1, "--item-features", movies, "--normalise-rows")
    check(rc == 1 and "other features than the model's" in err, "--load with other features exits 1", err)
    # --weights: another model than without, still learning.
    rc, out, err = run(*common, "--item-features", movies, "--weights", "--quiet")
    check(rc == 0 and cold_auc(out) is not None and cold_auc(out) > 0.7, "--weights trains (cold AUC %s)" % (
        cold_auc(out),), out + err)
    # A bad feature file: file:line and exit 1; usage errors exit 2.
    bad = os.path.join(tmp, "bad-movies.csv")
    with open(bad, "w") as f:
        f.write('movieId,title,genres\n1000,"Film, The,Drama\n')
    rc, out, err = run(*common, "--item-features", bad)
    check(rc == 1 and "bad-movies.csv:2: a quoted field has no closing quote" in err,
          "a bad feature file: file:line and exit 1", err)
    for args in (["--no-identity"], ["--features-format", "movielens-movies"], ["--cold-items", "1.5"],
                 ["--item-features", movies, "--features-format", "xml"]):
        rc, out, err = run("--data", ratings, *args)
        check(rc == 2 and err.strip(), "usage error %s exits 2" % " ".join(str(a) for a in args), err)


def test_feature_npy(npy, items, features):
    """The feature files of --export-npy: shapes, names, and the representations from the matrix and tables."""
    try:
        import numpy as np
    except ImportError:
        print("note: numpy is missing; the feature npy checks are skipped")
        return None
    V = np.load(os.path.join(npy, "item_embeddings.npy"))
    b = np.load(os.path.join(npy, "item_biases.npy"))
    E = np.load(os.path.join(npy, "item_feature_embeddings.npy"))
    eb = np.load(os.path.join(npy, "item_feature_biases.npy"))
    indptr = np.load(os.path.join(npy, "item_features_indptr.npy"))
    indices = np.load(os.path.join(npy, "item_features_indices.npy"))
    data = np.load(os.path.join(npy, "item_features_data.npy"))
    names = open(os.path.join(npy, "item_feature_names.txt")).read().split("\n")[:-1]
    check(V.shape == (items, 16) and b.shape == (items,) and E.shape == (features, 16) and eb.shape == (features,),
          "feature npy shapes", "%s %s %s %s" % (V.shape, b.shape, E.shape, eb.shape))
    check(indptr.dtype == np.int64 and indices.dtype == np.int32 and data.dtype == np.float32
          and len(indptr) == items + 1 and len(indices) == indptr[-1] == len(data), "feature CSR arrays")
    check(len(names) == features and names[0].startswith("item:") and "genre:Western" in names,
          "item_feature_names.txt: one name per feature", str(names[-8:]))
    # Each item's representation is the weighted sum of its features' rows.
    M = np.zeros((items, features), dtype=np.float64)
    for r in range(items):
        for j in range(indptr[r], indptr[r + 1]):
            M[r, indices[j]] = data[j]
    check(np.allclose(M @ E, V, atol=1e-5) and np.allclose(M @ eb, b, atol=1e-5),
          "item_embeddings.npy = matrix x item_feature_embeddings.npy")
    # The identity (features 0 .. items - 1) at weight 1 or absent, the genres of a row summing to 1 (or none).
    identity = np.diag(M[:, :items])
    genres = M[:, items:].sum(axis=1)
    check(np.all((identity == 0) | (identity == 1)) and np.all(np.isclose(genres, 1, atol=1e-6) | (genres == 0))
          and np.count_nonzero(M[:, :items]) == np.count_nonzero(identity),
          "identity at weight 1, file features normalised to sum 1")
    return names


def main():
    global TOOL, ENV
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    TOOL = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="wltrain-test-")
    ENV = dict(os.environ)
    ENV.setdefault("POCL_DEVICES", "pthread")
    ENV["WARPLOSS_CACHE_DIR"] = os.path.join(tmp, "cache")
    t0 = time.time()
    try:
        test_flags()
        test_data_errors(tmp)
        test_data_parts(tmp)
        test_learning(tmp)
        test_reproducible(tmp)
        test_interrupt(tmp)
        test_features(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s) in %.1f s" % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
