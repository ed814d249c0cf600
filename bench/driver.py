"""The benchmark driver behind bench/run: churnguard against the Python stack,
side by side in one session, alternating the two, several repetitions each;
medians and ratios; BENCHMARKS.md.

Per size: features (vs pandas), training of logistic/tree/neural (vs
scikit-learn; XGBoost for reference), gbdt vs LightGBM with the same
settings, the oracle gap (at the size closest to --oracle-size, not in
--smoke), batch scoring (logistic predict/score vs Python; gbdt predict).
Then the flat-table quality (Telco, credit-card churners; not in --smoke)
and the online load test (not in --smoke).

Run through bench/run, which sets up the venv, wrk, the binaries and the
echo server, then calls this with --bin, --echo-bin, --work and --repo.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
PY = sys.executable

# ------------------------------------------------------------------ helpers


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Failed(Exception):
    pass


class TimedOut(Failed):
    pass


def run(cmd, cwd=None, env=None, timeout=3600, check=True):
    """Runs a command; returns wall seconds, peak RSS (MiB) of the process
    (and its waited-for children), exit code and output."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
    deadline = t0 + timeout
    timed_out = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            timed_out = True
            break
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    r = {
        "cmd": cmd,
        "wall": wall,
        "rss_mib": ru.ru_maxrss / 1024.0,
        "rc": p.returncode,
        "stdout": out.read().decode(errors="replace"),
        "stderr": err.read().decode(errors="replace"),
    }
    if timed_out:
        raise TimedOut(f"{' '.join(map(str, cmd))} stopped after the {timeout} s time limit")
    if check and r["rc"] != 0:
        raise Failed(f"{' '.join(map(str, cmd))} exited {r['rc']}:\n{r['stderr'][-3000:]}")
    return r


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


DUR = re.compile(r"\bin ([0-9.]+)(ns|µs|us|ms|s)\b")
UNIT = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def duration(text, pattern=DUR):
    m = pattern.search(text)
    return float(m.group(1)) * UNIT[m.group(2)] if m else None


# `churnguard train`'s leaderboard: one row per family, the champion marked
# `*`, then ten figures: val AUC, folds/origins (mean±sd), the test ROC-AUC,
# PR-AUC, log loss, Brier, ECE, fit (s) (one fit of the final model),
# ms/1k rows and profit(test). A `churn type: ...` line (indented) may follow.
LEADER_COLS = ("val_auc", "folds", "roc_auc", "pr_auc", "logloss", "brier", "ece", "fit",
               "ms_1k", "profit")
LEADER_ROW = re.compile(r"^(logistic|tree|gbdt|neural)(\*?)" + r"\s+(\S+)" * 10 + r"\s*$", re.M)
TRAIN_ROWS = re.compile(r"^rows: train (\d+), validation (\d+), test (\d+)", re.M)
SAVED = re.compile(r"^saved (\S+) \((\w+)\) to ", re.M)
ORACLE_SNAPSHOT = re.compile(
    r"^oracle at the snapshot state \(true hidden state, no future\) ROC-AUC: (\S+); "
    r"champion gap (\S+)", re.M)
ORACLE_HAZARD = re.compile(
    r"^oracle \(true hazards\) ROC-AUC on the same test rows: (\S+); champion (\S+) "
    r"\(gap (\S+)\)", re.M)
# stderr: `train: gbdt: validation ROC-AUC 0.6618, test 0.6604 (1.4 s)`: the
# family's whole protocol (every origin or fold, search, refit).
STAGE_DONE = re.compile(r"^train: (\w+): validation ROC-AUC \S+, test \S+ \(([0-9.]+) s\)", re.M)
# `scored N rows with ID (FAMILY) into OUT in 412.345ms (compute 120.5ms)`
# (Rust's Duration; the compute part is the model's own time).
PREDICTED = re.compile(r"^scored (\d+) rows with (\S+) \((\w+)\) into .* in "
                       r"([0-9.]+)(ns|µs|us|ms|s)(?: \(compute ([0-9.]+)(ns|µs|us|ms|s)\))?\s*$", re.M)


def num(text):
    """A figure of churnguard's output; None for `-`, NaN or anything else."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def leaderboard(stdout):
    """{family: {val_auc, folds, roc_auc (test), ..., fit, champion}} from
    `churnguard train`'s output."""
    out = {}
    for m in LEADER_ROW.finditer(stdout):
        fam, star, vals = m.group(1), m.group(2), m.groups()[2:]
        row = {k: (v if k == "folds" else num(v)) for k, v in zip(LEADER_COLS, vals)}
        row["champion"] = star == "*"
        out[fam] = row
    return out


def champion(board):
    return next((f for f, r in board.items() if r["champion"]), None)


def train_rows(stdout):
    m = TRAIN_ROWS.search(stdout)
    return {"train": int(m.group(1)), "validation": int(m.group(2)),
            "test": int(m.group(3))} if m else None


def saved_ids(stdout):
    return {fam: mid for mid, fam in SAVED.findall(stdout)}


def stage_totals(stderr):
    return {fam: float(s) for fam, s in STAGE_DONE.findall(stderr)}


def oracle_lines(stdout):
    a, b = ORACLE_SNAPSHOT.search(stdout), ORACLE_HAZARD.search(stdout)
    return {"snapshot_auc": num(a.group(1)) if a else None,
            "snapshot_gap": num(a.group(2)) if a else None,
            "hazard_auc": num(b.group(1)) if b else None,
            "hazard_champion": num(b.group(2)) if b else None,
            "hazard_gap": num(b.group(3)) if b else None}


def predicted(stdout):
    """(rows, model id, family, in-process seconds, compute seconds or None) of
    `churnguard predict`."""
    m = PREDICTED.search(stdout)
    if not m:
        return None
    compute = float(m.group(6)) * UNIT[m.group(7)] if m.group(6) else None
    return int(m.group(1)), m.group(2), m.group(3), float(m.group(4)) * UNIT[m.group(5)], compute


# churnguard's [gbdt] settings for the comparison with LightGBM (the peer's
# defaults in peers/train_lightgbm.py are the same).
GBDT_FIXED = {"n_trees": 300, "learning_rate": 0.1, "max_leaves": 31, "max_depth": 0,
              "min_data_in_leaf": 20, "min_sum_hessian": 0.001, "lambda_l2": 1.0,
              "min_gain": 0.0, "feature_fraction": 1.0, "bagging_fraction": 1.0,
              "max_bins": 255, "early_stopping_rounds": 0, "seed": 42}
GBDT_THREADS = 2


def sha256(path, n=12):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def fmt(x, d=2):
    return "timed out" if x is None else f"{x:.{d}f}"


def loadavg():
    return os.getloadavg()[0]


def fmt_n(n):
    if n == 0:
        return "0"
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pyenv():
    env = dict(os.environ)
    env["PYTHONPATH"] = PEERS
    env.setdefault("PYTHONHASHSEED", "0")
    return env


# ------------------------------------------------------------------ machine


def machine(args):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024 / 1024
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=args.repo).stdout.strip()
        except OSError:
            return "unavailable"

    import importlib.metadata as md

    def version(p):
        try:
            return md.version(p)
        except md.PackageNotFoundError:
            return "absent"

    pkgs = {p: version(p) for p in ("numpy", "pandas", "pyarrow", "scikit-learn", "xgboost",
                                    "lightgbm", "catboost", "fastapi", "uvicorn", "pydantic")}
    commit = out(["git", "rev-parse", "--short=12", "HEAD"])
    dirty = out(["git", "status", "--porcelain", "--", "src", "crates", "Cargo.toml",
                 "Cargo.lock"])
    return {
        "cpu": cpu,
        "nproc": nproc,
        "mem_gib": round(mem, 1),
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes in src/ or crates/)" if dirty else ""),
        "binary_sha256": sha256(args.bin),
        "binary_built": dt.datetime.fromtimestamp(
            os.path.getmtime(args.bin_source or args.bin), dt.timezone.utc
        ).strftime("%Y-%m-%d %H:%M UTC"),
        "rustc": out(["rustc", "--version"]),
        "python": platform.python_version(),
        "packages": pkgs,
        "wrk": out(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "absent",
    }


# ------------------------------------------------------------------ steps


class Bench:
    def __init__(self, args):
        self.a = args
        self.cg = args.bin
        self.R = args.reps
        self.res = {"sizes": {}, "notes": [], "commands": [], "failures": []}
        self.cg_failed = False

    def note(self, s):
        log("note: " + s)
        self.res["notes"].append(s)

    def command(self, what, cmd):
        c = " ".join(str(x) for x in cmd)
        c = c.replace(self.a.work, "$WORK").replace(HERE, "bench").replace(PY, "python")
        if (what, c) not in [tuple(x) for x in self.res["commands"]]:
            self.res["commands"].append([what, c])

    def cgrun(self, what, cmd, env=None, **kw):
        """Runs churnguard. `env`: extra variables (recorded with the
        command). Training runs record their audit rows in the work
        directory's own store, never in a churnguard.db of the working
        directory (the repository's)."""
        env = dict(env or {})
        self.command(what, [f"{k}={v}" for k, v in env.items()] + [self.cg] + cmd)
        full = dict(os.environ)
        full["CHURNGUARD_DATABASE_URL"] = "sqlite://" + os.path.join(self.a.work, "audit.db")
        full.update(env)
        try:
            return run([self.cg] + cmd, env=full, **kw)
        except TimedOut:
            raise
        except Failed as e:
            self.cg_failed = True
            self.res["failures"].append(f"churnguard {what}: {e}")
            raise

    def pyrun(self, what, script, argv, **kw):
        cmd = [PY, os.path.join(PEERS, script)] + argv
        self.command(what, cmd)
        try:
            r = run(cmd, env=pyenv(), **kw)
        except TimedOut:
            raise
        except Failed as e:
            self.res["failures"].append(f"python {what}: {e}")
            raise
        r["json"] = json.loads(r["stdout"].strip().splitlines()[-1])
        return r

    def reps_for(self, first_wall, limit=None):
        """Repetitions: all of them, unless the first run was long."""
        limit = limit or self.a.long_run_s
        return 1 if first_wall > limit else self.R

    # -------------------------------------------------------------- data

    def data(self, n):
        d = os.path.join(self.a.work, f"data-{fmt_n(n)}")
        marker = os.path.join(d, ".complete")
        want = f"customers={n} months=24 seed=42"
        if os.path.exists(marker) and open(marker).read() == want:
            log(f"{fmt_n(n)}: reusing generated data in {d}")
            return d
        shutil.rmtree(d, ignore_errors=True)
        log(f"{fmt_n(n)}: generating {n} customers")
        r = self.cgrun("generate", ["generate", "--customers", str(n), "--months", "24",
                                    "--seed", "42", "--out", d])
        log(f"{fmt_n(n)}: generated in {r['wall']:.1f} s (peak {r['rss_mib']:.0f} MiB)")
        with open(marker, "w") as f:
            f.write(want)
        return d

    # -------------------------------------------------------------- features

    def features(self, n, data, out):
        log(f"{fmt_n(n)}: feature pipeline, churnguard vs pandas")
        cg, pd_ = [], []
        fcg = os.path.join(out, "features.parquet")
        fpd = os.path.join(out, "features_pandas.parquet")
        reps = self.R
        i = 0
        while i < reps:
            pair = [("cg", lambda: self.cgrun("features", ["features", "--data", data,
                                                           "--out", fcg])),
                    ("pd", lambda: self.pyrun("features (pandas)", "features_pandas.py",
                                              ["--data", data, "--out", fpd]))]
            if i % 2:
                pair.reverse()
            for who, f in pair:
                r = f()
                if who == "cg":
                    r["inproc"] = duration(r["stdout"])
                    cg.append(r)
                else:
                    r["inproc"] = r["json"]["seconds"]
                    pd_.append(r)
            if i == 0:
                reps = self.reps_for(max(cg[0]["wall"], pd_[0]["wall"]))
            i += 1
            log(f"  rep {i}/{reps}: churnguard {cg[-1]['wall']:.2f} s, pandas {pd_[-1]['wall']:.2f} s")
        agree = self.compare_features(fcg, fpd)
        return {"churnguard": summarize(cg), "pandas": summarize(pd_), "agreement": agree,
                "reps": reps, "path": fcg}

    def compare_features(self, a_path, b_path):
        import numpy as np
        import pandas as pd

        a = pd.read_parquet(a_path)
        b = pd.read_parquet(b_path)
        out = {"rows": [len(a), len(b)], "columns": {}, "sample": 0}
        if len(a) != len(b):
            self.note(f"feature tables differ in rows: churnguard {len(a)}, pandas {len(b)}")
            return out
        rng = np.random.default_rng(0)
        idx = np.sort(rng.choice(len(a), size=min(len(a), 20_000), replace=False))
        out["sample"] = int(len(idx))
        a, b = a.iloc[idx].reset_index(drop=True), b.iloc[idx].reset_index(drop=True)
        for c in a.columns:
            x, y = a[c], b[c]
            if c == "snapshot_date":
                x, y = pd.to_datetime(x), pd.to_datetime(y)
                out["columns"][c] = int((x != y).sum())
            elif x.dtype.kind in "fiub" or str(x.dtype) in ("Int32", "Int64", "UInt32"):
                xv, yv = x.astype("float64").to_numpy(), y.astype("float64").to_numpy()
                nan_mismatch = int((np.isnan(xv) != np.isnan(yv)).sum())
                both = ~np.isnan(xv) & ~np.isnan(yv)
                diff = np.abs(xv[both] - yv[both])
                out["columns"][c] = int(nan_mismatch + (diff > 1e-9 * (1 + np.abs(xv[both]))).sum())
            else:
                out["columns"][c] = int((x.fillna("\0").astype(str) != y.fillna("\0").astype(str)).sum())
        bad = {k: v for k, v in out["columns"].items() if v}
        if bad:
            self.note(f"{fmt_n(len(a))}-row sample: columns where pandas and churnguard differ: {bad}")
        return out

    # -------------------------------------------------------------- training

    def training(self, n, fpath, out):
        log(f"{fmt_n(n)}: training, churnguard vs scikit-learn (and XGBoost)")
        res = {}
        model_ids = {}
        for fam in ("logistic", "tree", "neural"):
            if fam == "neural" and n > self.a.neural_max:
                self.note(f"{fmt_n(n)}: neural family and MLPClassifier skipped: " + (
                    "not in --smoke (a neural fit takes from seconds to a minute at 10k)"
                    if self.a.smoke else
                    f"above --neural-max {fmt_n(self.a.neural_max)} customers (each side would "
                    "take hours at this size on 2 cores)"))
                continue
            cg, sk = [], []
            reps, i = self.R, 0
            if fam == "neural" and n > 10_000:
                reps = 1
            limit = self.a.neural_timeout if fam == "neural" else self.a.timeout
            while i < reps:
                # One registry per repetition: model ids are stamped to the second, and two
                # fits of the same family within a second collide ("Directory not empty").
                reg = os.path.join(out, f"models-{i}")

                def cgf():
                    r = self.cgrun(f"train {fam}", ["train", "--data", fpath, "--families", fam,
                                                    "--registry", reg, "--no-promote"],
                                   timeout=limit)
                    row = leaderboard(r["stdout"]).get(fam)
                    if not row:
                        if "skipped" in r["stdout"] or "not enabled" in r["stdout"] + r["stderr"]:
                            return None
                        raise Failed(f"cannot read the leaderboard:\n{r['stdout']}")
                    # The test ROC-AUC (the last backtest origin's rows) and
                    # one fit of the final model.
                    r["auc"], r["fit"] = row["roc_auc"], row["fit"]
                    r["total"] = stage_totals(r["stderr"]).get(fam)
                    r["cg_rows"] = train_rows(r["stdout"])
                    mid = saved_ids(r["stdout"]).get(fam)
                    if mid and fam not in model_ids:
                        model_ids[fam] = (reg, mid)
                    return r

                def skf():
                    save = os.path.join(out, f"sklearn_{fam}.joblib")
                    r = self.pyrun(f"train {fam} (scikit-learn)", "train_sklearn.py",
                                   ["--data", fpath, "--family", fam, "--save", save],
                                   timeout=limit)
                    r["auc"], r["fit"] = r["json"]["test_auc"], r["json"]["fit_seconds"]
                    r["rows"] = r["json"]["rows"]
                    return r

                pair = [("cg", cgf), ("sk", skf)]
                if i % 2:
                    pair.reverse()
                for who, f in pair:
                    try:
                        r = f()
                    except TimedOut as e:
                        self.note(f"{fmt_n(n)}: {fam}: {'churnguard' if who == 'cg' else 'scikit-learn'} "
                                  f"run stopped at the {limit} s limit ({e})")
                        r = {"wall": float(limit), "rss_mib": None, "fit": None, "auc": None,
                             "timed_out": True, "rows": {"train": 0}}
                    if r is None:
                        self.note(f"{fam}: not in this churnguard build (torch feature off)")
                        reps = 0
                        break
                    (cg if who == "cg" else sk).append(r)
                if reps == 0:
                    break
                if i == 0:
                    reps = min(reps, self.reps_for(max(cg[0]["wall"], sk[0]["wall"])))
                i += 1
                log(f"  {fam} rep {i}/{reps}: churnguard fit {fmt(cg[-1]['fit'])} s AUC "
                    f"{fmt(cg[-1]['auc'], 4)}; scikit-learn fit {fmt(sk[-1]['fit'])} s AUC "
                    f"{fmt(sk[-1]['auc'], 4)}")
            if cg:
                res[fam] = {"churnguard": summarize(cg, ("fit", "auc", "total")),
                            "sklearn": summarize(sk, ("fit", "auc")), "reps": len(cg),
                            "rows": next((x["rows"] for x in sk if x["rows"]["train"]),
                                         {"train": 0}),
                            "churnguard_rows": next((x["cg_rows"] for x in cg
                                                     if x.get("cg_rows")), None)}
                self.check_rows(n, fam, res[fam]["churnguard_rows"], res[fam]["rows"])
                self.check_fit(n, fam, res[fam]["churnguard"])
        if n <= self.a.xgboost_max:
            xs = []
            reps = self.R
            for i in range(self.R):
                if i >= reps:
                    break
                r = self.pyrun("train xgboost", "train_sklearn.py",
                               ["--data", fpath, "--family", "xgboost"], timeout=self.a.timeout)
                r["auc"], r["fit"] = r["json"]["test_auc"], r["json"]["fit_seconds"]
                xs.append(r)
                if i == 0:
                    reps = self.reps_for(r["wall"])
            log(f"  xgboost: fit {median([x['fit'] for x in xs]):.2f} s AUC {xs[0]['auc']:.4f}")
            res["xgboost"] = {"python": summarize(xs, ("fit", "auc")), "reps": len(xs)}
        else:
            self.note(f"{fmt_n(n)}: XGBoost skipped" + (" in --smoke" if self.a.smoke else
                      f" above --xgboost-max {fmt_n(self.a.xgboost_max)}"))
        return res, model_ids

    def check_rows(self, n, what, cg_rows, peer_rows):
        """A note when churnguard's final model and the peer did not learn
        from (or test on) as many rows."""
        if not cg_rows or not peer_rows or not peer_rows.get("train"):
            return
        if (cg_rows["train"], cg_rows["test"]) != (peer_rows["train"], peer_rows["test"]):
            self.note(f"{fmt_n(n)}: {what}: churnguard trained on {cg_rows['train']:,} rows and "
                      f"tested on {cg_rows['test']:,}, the peer on {peer_rows['train']:,} and "
                      f"{peer_rows['test']:,}: the split rules differ")

    def check_fit(self, n, what, summary):
        """churnguard's `fit (s)` is one fit of the final model; a binary
        whose `fit (s)` still counts every fit of the protocol (3 origins)
        shows a fit as long as the whole family's time."""
        fit, total = summary.get("fit"), summary.get("total")
        if fit and total and fit > 0.9 * total and not self.res.get("fit_is_total"):
            self.res["fit_is_total"] = True
            self.note(f"{fmt_n(n)}: {what}: churnguard's `fit (s)` {fit:.2f} s is about the "
                      f"family's whole protocol ({total:.2f} s, every backtest origin): this "
                      "binary's `fit (s)` counts every fit, not the final model's one, so its "
                      "fit times here are overstated")

    # -------------------------------------------------------------- gbdt

    def gbdt_config(self):
        path = os.path.join(self.a.work, "gbdt_fixed.toml")
        text = "# bench/driver.py: churnguard's gbdt with LightGBM's settings (bench/peers/train_lightgbm.py)\n[gbdt]\n" + "".join(
            f"{k} = {v}\n" for k, v in GBDT_FIXED.items())
        with open(path, "w") as f:
            f.write(text)
        return path

    def gbdt_lightgbm(self, n, fpath, out):
        """churnguard's gbdt with fixed settings (300 trees, 31 leaves, no
        early stopping) against LightGBM with the same settings, 2 threads
        each, on the last backtest origin's window and test rows."""
        log(f"{fmt_n(n)}: gbdt vs LightGBM, same settings, {GBDT_THREADS} threads")
        config = self.gbdt_config()
        env = {"RAYON_NUM_THREADS": str(GBDT_THREADS)}
        cg, lg = [], []
        reps, i = self.R, 0
        while i < reps:
            reg = os.path.join(out, f"gbdt-fixed-{i}")

            def cgf():
                r = self.cgrun("train gbdt (LightGBM's settings)",
                               ["train", "--data", fpath, "--families", "gbdt", "--config",
                                config, "--registry", reg, "--no-promote"],
                               env=env, timeout=self.a.timeout)
                row = leaderboard(r["stdout"]).get("gbdt")
                if not row:
                    raise Failed(f"cannot read the gbdt row of the leaderboard:\n{r['stdout']}")
                r["auc"], r["fit"] = row["roc_auc"], row["fit"]
                r["total"] = stage_totals(r["stderr"]).get("gbdt")
                r["cg_rows"] = train_rows(r["stdout"])
                self.check_gbdt_settings(n, reg, saved_ids(r["stdout"]).get("gbdt"))
                return r

            def lgf():
                r = self.pyrun("train LightGBM (same settings)", "train_lightgbm.py",
                               ["--data", fpath, "--threads", str(GBDT_THREADS)],
                               timeout=self.a.timeout)
                r["auc"], r["fit"] = r["json"]["test_auc"], r["json"]["fit_seconds"]
                return r

            pair = [("cg", cgf), ("lg", lgf)]
            if i % 2:
                pair.reverse()
            for who, f in pair:
                try:
                    r = f()
                except TimedOut as e:
                    self.note(f"{fmt_n(n)}: gbdt vs LightGBM: "
                              f"{'churnguard' if who == 'cg' else 'LightGBM'} stopped at the "
                              f"{self.a.timeout} s limit ({e})")
                    r = {"wall": float(self.a.timeout), "rss_mib": None, "fit": None,
                         "auc": None, "timed_out": True}
                (cg if who == "cg" else lg).append(r)
            if i == 0:
                reps = self.reps_for(max(cg[0]["wall"], lg[0]["wall"]))
            i += 1
            log(f"  rep {i}/{reps}: churnguard gbdt fit {fmt(cg[-1]['fit'])} s AUC "
                f"{fmt(cg[-1]['auc'], 4)} (whole train {cg[-1]['wall']:.1f} s); LightGBM fit "
                f"{fmt(lg[-1]['fit'])} s AUC {fmt(lg[-1]['auc'], 4)}")
        peer = next((x["json"] for x in lg if "json" in x), {})
        res = {"churnguard": summarize(cg, ("fit", "auc", "total")),
               "lightgbm": summarize(lg, ("fit", "auc")), "reps": len(cg),
               "rows": peer.get("rows"), "origin": peer.get("origin"),
               "churnguard_rows": next((x["cg_rows"] for x in cg if x.get("cg_rows")), None),
               "settings": dict(GBDT_FIXED), "threads": GBDT_THREADS,
               "lightgbm_settings": peer.get("settings"), "lightgbm_version": peer.get("lightgbm"),
               "lightgbm_trees": peer.get("trees"),
               "omp_wait_policy": peer.get("omp_wait_policy")}
        self.check_rows(n, "gbdt vs LightGBM", res["churnguard_rows"], res["rows"])
        self.check_fit(n, "gbdt", res["churnguard"])
        return res

    def check_gbdt_settings(self, n, reg, mid):
        """A note when the saved model's settings are not the config's (a key
        the binary ignored or renamed)."""
        try:
            hp = json.load(open(os.path.join(reg, mid, "manifest.json")))["hyperparameters"]
        except (OSError, KeyError, TypeError, ValueError) as e:
            self.note(f"{fmt_n(n)}: could not read the gbdt model's settings from its manifest "
                      f"({e})")
            return
        off = {k: (v, hp.get(k)) for k, v in GBDT_FIXED.items()
               if k != "seed" and hp.get(k) != v}
        if off:
            self.note(f"{fmt_n(n)}: the gbdt model's settings differ from gbdt_fixed.toml "
                      f"(key: (config, model)): {off}")

    def gbdt_default(self, n, fpath, out):
        """A gbdt fit with churnguard's default settings (early stopping on):
        its model is the one batch prediction times."""
        log(f"{fmt_n(n)}: gbdt with default settings (the model batch prediction times)")
        reg = os.path.join(out, "gbdt-default")
        r = self.cgrun("train gbdt (default settings)",
                       ["train", "--data", fpath, "--families", "gbdt", "--registry", reg,
                        "--no-promote"], timeout=self.a.timeout)
        row = leaderboard(r["stdout"]).get("gbdt")
        mid = saved_ids(r["stdout"]).get("gbdt")
        if not row or not mid:
            raise Failed(f"cannot read the gbdt row or its model id:\n{r['stdout']}")
        log(f"  default gbdt: fit {fmt(row['fit'])} s, test ROC-AUC {fmt(row['roc_auc'], 4)}, "
            f"whole train {r['wall']:.1f} s")
        return {"auc": row["roc_auc"], "fit": row["fit"], "wall": r["wall"],
                "rss_mib": r["rss_mib"], "total": stage_totals(r["stderr"]).get("gbdt"),
                "registry": reg, "id": mid, "source": "default gbdt fit"}

    # -------------------------------------------------------------- oracle

    def oracle(self, n, data, fpath, out):
        """churnguard's default training (every family of the build) with
        --truth: the champion's test ROC-AUC against the generator's oracles
        on the same test rows (the last backtest origin)."""
        log(f"{fmt_n(n)}: oracle gap (default training with --truth)")
        reg = os.path.join(out, "oracle")
        cmd = ["train", "--data", fpath, "--truth", data, "--registry", reg, "--no-promote"]
        fams = None
        if n > self.a.neural_max:
            fams = "logistic,tree,gbdt"
            cmd += ["--families", fams]
            self.note(f"{fmt_n(n)}: oracle run without the neural family (above --neural-max "
                      f"{fmt_n(self.a.neural_max)})")
        try:
            r = self.cgrun("train, every family, with the oracle (--truth)", cmd,
                           timeout=self.a.timeout)
        except TimedOut as e:
            self.note(f"{fmt_n(n)}: oracle run stopped at the {self.a.timeout} s limit ({e})")
            return {"timed_out": True, "wall": float(self.a.timeout)}
        board = leaderboard(r["stdout"])
        champ = champion(board)
        o = oracle_lines(r["stdout"])
        if not champ or o["snapshot_auc"] is None:
            raise Failed(f"cannot read the leaderboard or the oracle lines:\n{r['stdout']}")
        res = {"families": board, "champion": champ, "champion_auc": board[champ]["roc_auc"],
               **o, "gap": (None if board[champ]["roc_auc"] is None else
                            o["snapshot_auc"] - board[champ]["roc_auc"]),
               "rows": train_rows(r["stdout"]), "wall": r["wall"], "rss_mib": r["rss_mib"],
               "ids": saved_ids(r["stdout"]), "registry": reg, "families_flag": fams,
               "skipped": re.findall(r"^skipped (\w+):", r["stdout"], re.M)}
        log(f"  champion {champ} test ROC-AUC {fmt(res['champion_auc'], 4)}; snapshot-state "
            f"oracle {fmt(o['snapshot_auc'], 4)} (gap {fmt(res['gap'], 4)}); true-hazard oracle "
            f"{fmt(o['hazard_auc'], 4)}")
        return res

    def oracle_size(self):
        """The run's size closest to --oracle-size (on a log scale; the smaller on a tie)."""
        import math

        if not self.a.sizes:
            return None
        return min(self.a.sizes, key=lambda n: (abs(math.log(n / self.a.oracle_size)), n))

    # -------------------------------------------------------------- flat tables

    def flat_sets(self):
        out = []
        for name, data, schema in (("Telco", self.a.telco, self.a.telco_schema),
                                   ("credit-card churners", self.a.credit_card,
                                    self.a.credit_card_schema)):
            if data and schema:
                out.append((name, data, schema))
        return out

    def flat(self, name, data, schema):
        """churnguard's default training and its tuned training on a flat
        table against flat_quality.py (XGBoost with its CV grid, LightGBM and
        CatBoost defaults), all on the same hash split (seed 42, 20% test)."""
        log(f"flat-table quality: {name}: churnguard (default, tuned) vs XGBoost, LightGBM, "
            "CatBoost")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        out = os.path.join(self.a.work, "flat", slug)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        res = {"data": data, "schema": schema, "seed": 42, "test_fraction": 0.2,
               "budget": self.a.tune_budget}

        def cg(kind, extra):
            reg = os.path.join(out, f"models-{kind}")
            try:
                r = self.cgrun(f"train {kind} (flat table)",
                               ["train", "--data", data, "--schema", schema, "--seed", "42",
                                "--registry", reg, "--no-promote"] + extra,
                               timeout=self.a.timeout)
            except TimedOut as e:
                self.note(f"{name}: churnguard {kind} training stopped at the "
                          f"{self.a.timeout} s limit ({e})")
                return {"timed_out": True}
            board = leaderboard(r["stdout"])
            champ = champion(board)
            if not champ:
                raise Failed(f"cannot read the leaderboard:\n{r['stdout']}")
            log(f"  churnguard {kind}: champion {champ} test ROC-AUC "
                f"{fmt(board[champ]['roc_auc'], 4)} ({r['wall']:.0f} s)")
            return {"families": board, "champion": champ,
                    "champion_auc": board[champ]["roc_auc"], "rows": train_rows(r["stdout"]),
                    "wall": r["wall"], "rss_mib": r["rss_mib"],
                    "skipped": re.findall(r"^skipped (\w+):", r["stdout"], re.M)}

        try:
            res["default"] = cg("default", [])
            try:
                p = self.pyrun(f"flat-table peers ({name})", "flat_quality.py",
                               ["--data", data, "--schema", schema, "--seed", "42",
                                "--test-fraction", "0.2"], timeout=self.a.timeout)
                j = p["json"]
                res["peers"] = {"families": j["families"], "best": j["best"], "rows": j["rows"],
                                "versions": j.get("versions"), "wall": p["wall"],
                                "rss_mib": p["rss_mib"], "dataset": j.get("dataset")}
                log(f"  peers: best {j['best']['family']} test ROC-AUC "
                    f"{j['best']['test_roc_auc']:.4f} ({p['wall']:.0f} s)")
            except TimedOut as e:
                self.note(f"{name}: flat_quality.py stopped at the {self.a.timeout} s limit ({e})")
            except Failed as e:
                self.note(f"{name}: flat_quality.py failed: {str(e).splitlines()[0]}")
            res["tuned"] = cg("tuned", ["--tune", "--budget", self.a.tune_budget])
        except Failed as e:
            res["error"] = str(e)
            return res
        rows = (res.get("default") or {}).get("rows")
        peer_rows = (res.get("peers") or {}).get("rows")
        if rows and peer_rows and rows["test"] != peer_rows["test"]["all"]:
            self.note(f"{name}: churnguard held out {rows['test']:,} test rows, flat_quality.py "
                      f"{peer_rows['test']['all']:,}: the splits differ")
        return res

    # -------------------------------------------------------------- batch

    def scoring_input(self, n, fpath, out):
        """n feature rows to score: the latest rows of the feature table (the
        active customers of the last snapshots), relabelled as one snapshot
        with unique ids, so that every size scores exactly n customers."""
        import numpy as np
        import pandas as pd

        df = pd.read_parquet(fpath)
        k = min(n, len(df))
        d = df.iloc[len(df) - k:].copy()
        snaps = np.sort(d["snapshot_date"].unique())
        which = np.searchsorted(snaps, d["snapshot_date"].to_numpy())
        d["customer_id"] = d["customer_id"] + (len(snaps) - 1 - which) * 100_000_000
        d["snapshot_date"] = snaps[-1]
        d["churned"] = pd.array([None] * len(d), dtype="Int32")
        d["label_observed"] = False
        d["churn_type"] = None
        path = os.path.join(out, "score_input.parquet")
        d.to_parquet(path, index=False)
        shutil.copy(fpath + ".schema.json", path + ".schema.json")
        return path, len(d)

    def batch(self, n, fpath, model_ids, out, gbdt=None):
        """`predict` and `score` with the logistic model against the Python
        path; with `gbdt` (registry, id of a default-settings gbdt model),
        `predict` with it too, on the same rows."""
        log(f"{fmt_n(n)}: batch scoring, churnguard predict/score vs scikit-learn + pandas"
            + (" (and predict with gbdt)" if gbdt else ""))
        if "logistic" not in model_ids:
            self.note("batch scoring skipped: no logistic model")
            return None
        path, rows = self.scoring_input(n, fpath, out)
        reg, mid = model_ids["logistic"]
        skmodel = os.path.join(out, "sklearn_logistic.joblib")
        pred, score, py, gpred = [], [], [], []
        reps, i = self.R, 0
        while i < reps:
            db = os.path.join(out, f"score-{i}.db")
            sdir = os.path.join(out, f"score-{i}")
            for p in (db, db + "-wal", db + "-shm"):
                if os.path.exists(p):
                    os.remove(p)
            shutil.rmtree(sdir, ignore_errors=True)
            steps = [
                ("predict", lambda: self.cgrun("predict", [
                    "predict", "--model", mid, "--registry", reg, "--data", path,
                    "--out", os.path.join(out, "predict.parquet")], timeout=self.a.timeout)),
                ("score", lambda: self.cgrun("score", [
                    "score", "--model", mid, "--registry", reg, "--data", path, "--out", sdir,
                    "--store", "sqlite://" + db], timeout=self.a.timeout)),
                ("python", lambda: self.pyrun("batch score (scikit-learn + pandas)",
                                              "score_python.py",
                                              ["--model", skmodel, "--data", path, "--out",
                                               os.path.join(out, "python_scores.parquet")],
                                              timeout=self.a.timeout)),
            ]
            if gbdt:
                steps.insert(1, ("predict_gbdt", lambda: self.cgrun("predict gbdt", [
                    "predict", "--model", gbdt[1], "--registry", gbdt[0], "--data", path,
                    "--out", os.path.join(out, "predict_gbdt.parquet")], timeout=self.a.timeout)))
            if i % 2:
                steps.reverse()
            for who, f in steps:
                r = f()
                if who in ("predict", "predict_gbdt"):
                    got = predicted(r["stdout"])
                    r["inproc"] = got[3] if got else None
                    r["compute"] = got[4] if got else None
                    if got and got[0] != rows:
                        self.note(f"{fmt_n(n)}: {who} scored {got[0]:,} rows, not {rows:,}")
                if who == "predict":
                    pred.append(r)
                elif who == "predict_gbdt":
                    gpred.append(r)
                elif who == "score":
                    r["inproc"] = duration(r["stdout"], re.compile(
                        r"customers at \S+ with .*? in ([0-9.]+)(ns|µs|us|ms|s)\b"))
                    score.append(r)
                else:
                    r["inproc"] = r["json"]["seconds"]
                    py.append(r)
            if i == 0:
                reps = self.reps_for(max(x[-1]["wall"] for x in (pred, score, py)))
            i += 1
            log(f"  rep {i}/{reps}: predict {pred[-1]['wall']:.2f} s, score {score[-1]['wall']:.2f} s, "
                f"python {py[-1]['wall']:.2f} s (compute {py[-1]['inproc']:.2f} s)"
                + (f", predict gbdt {gpred[-1]['wall']:.2f} s (in-process "
                   f"{fmt(gpred[-1]['inproc'], 3)} s)" if gpred else ""))
        agree = self.compare_scores(os.path.join(out, "score-0", "scores.parquet"),
                                    os.path.join(out, "python_scores.parquet"))
        res = {"rows": rows, "predict": summarize(pred), "score": summarize(score),
               "python": summarize(py), "reps": len(pred), "agreement": agree,
               "input_bytes": os.path.getsize(path)}
        if gpred:
            res["predict_gbdt"] = summarize(gpred)
            res["gbdt_model"] = {"id": gbdt[1], "source": gbdt[2] if len(gbdt) > 2 else None}
        return res

    def compare_scores(self, cg_path, py_path):
        """How close the two health indexes are (the models differ slightly)."""
        import numpy as np
        import pandas as pd

        try:
            a = pd.read_parquet(cg_path)
            b = pd.read_parquet(py_path)
            a = a.assign(key=a["customer_id"].astype(str))
            b = b.assign(key=b["customer_id"].astype(str)).drop(columns=["customer_id"])
            j = a.merge(b, on="key", how="inner", suffixes=("", "_py"))
            hcol = next(c for c in ("health", "health_score") if c in a.columns)
            pcol = "churn_probability"
            bcol = next(c for c in ("band", "health_band") if c in a.columns)
            return {
                "rows": len(j),
                "prob_corr": float(np.corrcoef(j[pcol], j[pcol + "_py"])[0, 1]),
                "health_mean_abs_diff": float((j[hcol] - j["health" if hcol != "health" else "health_py"]).abs().mean()),
                "band_agreement": float((j[bcol].astype(str) == j["band" if bcol != "band" else "band_py"].astype(str)).mean()),
            }
        except Exception as e:  # noqa: BLE001 - a report, never a failure
            return {"error": str(e)}

    def limits(self, n, batch, fpath, model_dir):
        """Physical limits of scoring the batch with the logistic model: the
        bytes its inputs occupy over the memory bandwidth, and its
        multiply-adds."""
        cols = json.load(open(fpath + ".schema.json"))["columns"]
        numeric = [c for c in cols if c["role"] == "numeric"]
        cats = [c for c in cols if c["role"] == "categorical"]
        bytes_row = 8 * len(numeric) + 4 * len(cats)  # f64 inputs, u32 category codes
        m = json.load(open(os.path.join(model_dir, "model.json")))
        pre = m["preprocessor"]
        width = len(pre["numeric"]) + sum(len(c["levels"]) + 1 for c in pre["categorical"])
        macs_row = width * (2 if m.get("churn_type") else 1)
        rows = batch["rows"]
        bw = self.res["membw"]["read_gb_s"] * 1e9
        mhz = 0.0
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    mhz = float(line.split(":")[1])
                    break
        cores = os.cpu_count() or 1
        # 2 FMA units x 4 f64 lanes (AVX2) per core per cycle, 2 flops each
        peak_flops = cores * (mhz or 2000.0) * 1e6 * 2 * 4 * 2
        return {"numeric": len(numeric), "categorical": len(cats), "bytes_per_row": bytes_row,
                "width": width, "macs_per_row": macs_row,
                "bytes": rows * bytes_row, "memory_s": rows * bytes_row / bw,
                "macs": rows * macs_row, "compute_s": 2 * rows * macs_row / peak_flops,
                "cpu_mhz": mhz}

    # -------------------------------------------------------------- online

    def online(self):
        import numpy as np  # noqa: F401 - warm the import before timing nothing

        log("online scoring: churnguard serve vs FastAPI + uvicorn vs axum echo (Telco)")
        out = os.path.join(self.a.work, "online")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        reg = os.path.join(out, "models")
        self.cgrun("train telco", ["train", "--data", self.a.telco, "--schema", self.a.telco_schema,
                                   "--families", "logistic", "--registry", reg])
        bodies = self.bodies(out)
        lua = os.path.join(HERE, "post.lua")
        servers = ["echo", "churnguard", "fastapi"]
        res = {s: {b: [] for b in bodies} for s in servers}
        mem = {s: [] for s in servers}
        for i in range(self.R):
            order = servers if i % 2 == 0 else list(reversed(servers))
            for s in order:
                port = free_port()
                proc, pids = self.start(s, port, reg, out, i)
                try:
                    for b, body in bodies.items():
                        self.wrk(port, body, lua, self.a.warmup_s)
                        r = self.wrk(port, body, lua, self.a.duration_s)
                        res[s][b].append(r)
                        log(f"  rep {i + 1}/{self.R} {s} {b}/request: {r['rps']:.0f} req/s, "
                            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                            + (f", {r['errors']} errors" if r["errors"] else ""))
                    mem[s].append(sum(peak_rss(p) for p in pids(proc)))
                finally:
                    stop(proc)
        summary = {}
        for s in servers:
            summary[s] = {"peak_rss_mib": median(mem[s])}
            for b in bodies:
                rs = res[s][b]
                summary[s][b] = {k: median([r[k] for r in rs])
                                 for k in ("rps", "p50_ms", "p99_ms", "errors")}
                summary[s][b]["all_rps"] = [r["rps"] for r in rs]
        return summary

    def bodies(self, out):
        import csv

        rows = list(csv.DictReader(open(self.a.telco)))
        ints = {"SeniorCitizen", "tenure"}
        floats = {"MonthlyCharges", "TotalCharges"}

        def rec(r):
            d = {}
            for k, v in r.items():
                if k == "Churn":
                    continue
                if k in ints:
                    d[k] = int(v) if v.strip() else None
                elif k in floats:
                    d[k] = float(v) if v.strip() else None
                else:
                    d[k] = v
            return d

        bodies = {}
        for n in (1, 100):
            path = os.path.join(out, f"body-{n}.json")
            with open(path, "w") as f:
                json.dump({"customers": [rec(r) for r in rows[:n]]}, f, separators=(",", ":"))
            bodies[n] = path
        return bodies

    def start(self, which, port, reg, out, i):
        logf = open(os.path.join(out, f"{which}-{i}.log"), "w")
        addr = f"127.0.0.1:{port}"
        if which == "echo":
            cmd = [self.a.echo_bin, addr]
            env = None
        elif which == "churnguard":
            cmd = [self.cg, "serve", "--no-auth", "--listen", addr, "--registry", reg,
                   "--store", "sqlite://" + os.path.join(out, f"serve-{i}.db"), "--watch-secs", "0"]
            env = None
        else:
            cmd = [os.path.join(os.path.dirname(PY), "uvicorn"), "fastapi_app:app", "--app-dir",
                   PEERS, "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                   "--no-access-log", "--log-level", "warning"]
            env = pyenv()
            env["BENCH_TELCO_CSV"] = self.a.telco
        self.command(f"server: {which}", cmd)
        proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, env=env, start_new_session=True)
        body = open(os.path.join(out, "body-1.json"), "rb").read()
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                if which == "churnguard":
                    self.cg_failed = True
                raise Failed(f"{which} server exited {proc.returncode}; see {logf.name}")
            try:
                import urllib.request

                req = urllib.request.Request(f"http://{addr}/v1/score", data=body,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 200:
                        break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        else:
            stop(proc)
            raise Failed(f"{which} server did not answer on {addr}")

        def pids(p):
            try:
                import psutil

                pp = psutil.Process(p.pid)
                return [p.pid] + [c.pid for c in pp.children(recursive=True)]
            except Exception:  # noqa: BLE001
                return [p.pid]

        return proc, pids

    def wrk(self, port, body, lua, seconds):
        cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", lua,
               f"http://127.0.0.1:{port}/v1/score"]
        env = dict(os.environ, BODY=body)
        self.command("load generator (BODY=body-N.json)", cmd)
        r = run(cmd, env=env, timeout=seconds + 60)
        t = r["stdout"]

        def lat(p):
            m = re.search(rf"^\s*{p}%\s+([0-9.]+)(us|ms|s)\s*$", t, re.M)
            return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else None

        rps = re.search(r"Requests/sec:\s+([0-9.]+)", t)
        errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
        sock = re.search(r"Socket errors: (.*)", t)
        return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": lat(50), "p99_ms": lat(99),
                "errors": int(errs.group(1)) if errs else 0, "socket": sock.group(1) if sock else "",
                "raw": t}

    # -------------------------------------------------------------- all

    def main(self):
        a = self.a
        if a.render_only:
            self.res = json.load(open(os.path.join(a.work, "results.json")))
            with open(a.report, "w") as f:
                import report

                f.write(report.render(self.res, a))
            log(f"wrote {a.report} from {os.path.join(a.work, 'results.json')}")
            return 0
        self.res["machine"] = machine(a)
        self.res["load_start"] = loadavg()
        self.res["command_line"] = a.command_line
        if a.online_only:
            return self.main_sizes_done()
        return self.main_rest()

    def main_sizes_done(self):
        a = self.a
        return self.main_rest(skip_membw=True)

    def main_rest(self, skip_membw=False):
        a = self.a
        log(f"machine: {self.res['machine']['cpu']}, {self.res['machine']['nproc']} cores; "
            f"load {self.res['load_start']:.2f}")
        if not skip_membw:
            r = self.pyrun("memory bandwidth (numpy copy)", "membw.py", [])
            self.res["membw"] = r["json"]
            log(f"memory bandwidth: copy {r['json']['copy_gb_s']:.1f} GB/s, "
                f"read {r['json']['read_gb_s']:.1f} GB/s")
        prev_path = os.path.join(a.work, "results.json")
        if a.online_only and not os.path.exists(prev_path):
            log("no earlier results.json: the report holds the online section only")
            a.sizes = []
        elif a.online_only:
            prev = json.load(open(prev_path))
            for k in ("sizes", "notes", "commands", "failures", "membw", "load_start",
                      "command_line", "flat", "fit_is_total"):
                self.res[k] = prev.get(k, self.res.get(k))
            rerun = self.res["machine"]["date"]
            online_bin = {k: self.res["machine"].get(k) for k in ("binary_sha256", "binary_built")}
            self.res["machine"] = prev["machine"]
            self.res["machine"]["date"] = (
                prev["machine"]["date"] + "; online section rerun " + rerun
                + f" with the binary sha256 {online_bin['binary_sha256']}…, built "
                + f"{online_bin['binary_built']}")
            a.sizes = []
        for n in a.sizes:
            out = os.path.join(a.work, f"run-{fmt_n(n)}")
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            s = self.res["sizes"][str(n)] = {"load_before": loadavg()}
            try:
                data = self.data(n)
                f = self.features(n, data, out)
                s["features"] = f
                s["training"], ids = self.training(n, f["path"], out)
                try:
                    s["gbdt_lightgbm"] = self.gbdt_lightgbm(n, f["path"], out)
                except Failed as e:
                    if self.cg_failed:
                        raise
                    log(f"gbdt vs LightGBM at {fmt_n(n)}: FAILED: {e}")
                    s["gbdt_lightgbm"] = {"error": str(e)}
                gbdt = None
                if n == self.oracle_size() and not a.smoke:
                    s["oracle"] = o = self.oracle(n, data, f["path"], out)
                    if o.get("ids", {}).get("gbdt"):
                        gbdt = (o["registry"], o["ids"]["gbdt"], "the oracle run's gbdt")
                if gbdt is None:
                    s["gbdt_default"] = g = self.gbdt_default(n, f["path"], out)
                    gbdt = (g["registry"], g["id"], g["source"])
                else:
                    o = s["oracle"]
                    s["gbdt_default"] = {"auc": o["families"]["gbdt"]["roc_auc"],
                                         "fit": o["families"]["gbdt"]["fit"],
                                         "id": gbdt[1], "source": gbdt[2]}
                s["batch"] = self.batch(n, f["path"], ids, out, gbdt)
                if s["batch"]:
                    s["limits"] = self.limits(n, s["batch"], f["path"], os.path.join(
                        *ids["logistic"]))
            except Failed as e:
                log(f"FAILED at {fmt_n(n)}: {e}")
                s["error"] = str(e)
                if self.cg_failed:
                    break
            except MemoryError as e:
                s["error"] = f"out of memory: {e}"
            self.dump()
        if a.smoke:
            self.note("oracle gap not measured in --smoke (a default training of every family "
                      f"at {fmt_n(a.oracle_size)} customers takes minutes); run without --smoke")
            self.note("flat-table quality (Telco, credit-card churners) not measured in --smoke: "
                      "CatBoost alone takes about 40 s per data set, XGBoost's CV grid and "
                      f"churnguard's --tune --budget {a.tune_budget} more; run without --smoke")
        elif not a.online_only and not self.cg_failed:
            sets = self.flat_sets()
            if not sets:
                self.note("flat-table quality skipped: no --telco or --credit-card data")
            elif not a.telco:
                self.note("flat-table quality: no Telco data (--telco)")
            elif not a.credit_card:
                self.note("flat-table quality: no credit-card churners data (--credit-card)")
            self.res["flat"] = {}
            for name, data, schema in sets:
                self.res["flat"][name] = self.flat(name, data, schema)
                self.dump()
                if self.cg_failed:
                    break
        if not a.smoke and not (a.telco and a.echo_bin):
            self.note("online comparison skipped: no Telco data or no echo server")
        elif not a.smoke and not self.cg_failed:
            try:
                self.res["load_before_online"] = loadavg()
                self.res["online"] = self.online()
            except Failed as e:
                log(f"online: FAILED: {e}")
                self.res["online_error"] = str(e)
        self.res["load_end"] = loadavg()
        self.dump()
        import report

        text = report.render(self.res, a)
        with open(a.report, "w") as f:
            f.write(text)
        log(f"wrote {a.report}")
        if self.cg_failed:
            log("churnguard FAILED: " + "; ".join(self.res["failures"])[:2000])
            return 1
        return 0

    def dump(self):
        with open(os.path.join(self.a.work, "results.json"), "w") as f:
            json.dump(self.res, f, indent=1, default=str)


def summarize(rs, extra=()):
    s = {
        "wall": median([r["wall"] for r in rs]),
        "rss_mib": median([r.get("rss_mib") for r in rs]),
        "all_wall": [round(r["wall"], 3) for r in rs],
    }
    if any("inproc" in r for r in rs):
        s["inproc"] = median([r.get("inproc") for r in rs])
        s["all_inproc"] = [None if r.get("inproc") is None else round(r["inproc"], 3) for r in rs]
    for k in extra:
        s[k] = median([r.get(k) for r in rs])
        s["all_" + k] = [None if r.get(k) is None else round(r[k], 4) for r in rs]
    s["timed_out"] = sum(1 for r in rs if r.get("timed_out"))
    return s


def peak_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bin-source", default=None, help="where the binary was copied from")
    ap.add_argument("--echo-bin", default=None)
    ap.add_argument("--work", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--render-only", action="store_true",
                    help="write the report from results.json without measuring")
    ap.add_argument("--online-only", action="store_true",
                    help="rerun only the online comparison; the rest comes from results.json")
    ap.add_argument("--telco", default=None)
    ap.add_argument("--telco-schema", default=None)
    ap.add_argument("--credit-card", default=None,
                    help="the credit-card churners CSV (flat-table quality section)")
    ap.add_argument("--credit-card-schema", default=None,
                    help="its schema (data/schemas/credit_card.toml)")
    ap.add_argument("--tune-budget", default="60s",
                    help="churnguard train --budget of the tuned flat-table runs")
    ap.add_argument("--oracle-size", type=int, default=100_000,
                    help="the oracle gap is measured at the run's size closest to this")
    ap.add_argument("--duration-s", type=int, default=10)
    ap.add_argument("--warmup-s", type=int, default=2)
    ap.add_argument("--long-run-s", type=float, default=150.0,
                    help="a step whose first run takes longer is run once")
    ap.add_argument("--neural-max", type=int, default=100_000)
    ap.add_argument("--neural-timeout", type=int, default=900,
                    help="time limit of one neural training run (either side)")
    ap.add_argument("--xgboost-max", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--command-line", default="bench/run")
    a = ap.parse_args()
    a.sizes = [int(x) for x in a.sizes.split(",") if x.strip()]
    a.work = os.path.abspath(a.work)
    sys.path.insert(0, HERE)
    sys.exit(Bench(a).main())


if __name__ == "__main__":
    main()
