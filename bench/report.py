"""Renders BENCHMARKS.md from the driver's results."""

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def n_(n):
    n = int(n)
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))


def s_(x, d=2):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{d}f}"


def r_(a, b):
    """a / b as a ratio."""
    if a is None or b is None or b == 0:
        return "–"
    v = a / b
    return f"{v:.1f}×" if v < 100 else f"{v:.0f}×"


def rate(rows, secs):
    if not secs:
        return "–"
    v = rows / secs
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.0f} k/s"
    return f"{v:.0f}/s"


def mib(x):
    if x is None:
        return "–"
    return f"{x / 1024:.1f} GiB" if x >= 1024 else f"{x:.0f} MiB"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def targets(res):
    rows = []
    sizes = sorted(res["sizes"], key=int)
    on = res.get("online")

    # online (keys may be ints or strings after a JSON round trip)
    def o(server, b):
        d = on[server]
        return d.get(b) or d.get(str(b))

    if on:
        cg1, fa1, ec1 = o("churnguard", 1), o("fastapi", 1), o("echo", 1)
        cg100, ec100 = o("churnguard", 100), o("echo", 100)
        x = cg1["rps"] / fa1["rps"] if fa1["rps"] else None
        rows.append(("Online, 1 customer/request: ≥ 200× FastAPI's throughput",
                     f"{cg1['rps']:.0f} vs {fa1['rps']:.0f} req/s = {x:.0f}×" if x else "–",
                     verdict(x is not None and x >= 200),
                     "" if x and x >= 200 else f"short by {200 / x:.1f}×" if x else ""))
        x = cg1["rps"] / ec1["rps"]
        rows.append(("Online, 1 customer/request: ≥ 60% of the bare axum echo",
                     f"{cg1['rps']:.0f} vs {ec1['rps']:.0f} req/s = {100 * x:.0f}%",
                     verdict(x >= 0.6), "" if x >= 0.6 else f"{100 * (0.6 - x):.0f} points short"))
        y = cg1["p99_ms"] / ec1["p99_ms"] if ec1["p99_ms"] else None
        rows.append(("Online, 1 customer/request: p99 ≤ 2× the echo's",
                     f"{cg1['p99_ms']:.2f} vs {ec1['p99_ms']:.2f} ms = {y:.2f}×" if y else "–",
                     verdict(y is not None and y <= 2), "" if y and y <= 2 else
                     (f"{y / 2:.2f}× over the bar" if y else "")))
        x = cg100["rps"] / ec100["rps"]
        rows.append(("Online, 100 customers/request: ≥ the echo's throughput",
                     f"{cg100['rps']:.0f} vs {ec100['rps']:.0f} req/s = {100 * x:.0f}%",
                     verdict(x >= 1.0), "" if x >= 1 else f"{100 * (1 - x):.0f}% short"))
    else:
        rows.append(("Online scoring targets", "not run (--smoke, or failed)", "–", ""))

    big = [n for n in sizes if "batch" in res["sizes"][n] and res["sizes"][n]["batch"]]
    if big:
        n = big[-1]
        b = res["sizes"][n]["batch"]
        label = n_(b["rows"])
        sc, pr, py = b["score"], b["predict"], b["python"]
        scale = 1_000_000 / b["rows"]
        rows.append((f"Batch scoring: 1M customers < 1 s (measured at {label} rows: `score`)",
                     f"`score` {s_(sc['wall'])} s wall ({s_(sc.get('inproc'))} s in-process)"
                     + ("" if b["rows"] >= 1_000_000 else
                        f"; ≈ {s_(sc['wall'] * scale)} s per 1M"),
                     verdict(sc["wall"] * max(scale, 1) < 1.0),
                     "" if sc["wall"] * max(scale, 1) < 1 else
                     f"{sc['wall'] * max(scale, 1):.1f}× the bar"))
        rows.append((f"Batch scoring: 1M customers < 1 s (`predict`, probability only, {label} rows)",
                     f"`predict` {s_(pr['wall'])} s wall",
                     verdict(pr["wall"] * max(scale, 1) < 1.0),
                     "" if pr["wall"] * max(scale, 1) < 1 else
                     f"{pr['wall'] * max(scale, 1):.1f}× the bar"))
        x = py["wall"] / sc["wall"]
        rows.append((f"Batch scoring: ≥ 10× the Python path ({label} rows, `score` vs Python, wall)",
                     f"{s_(py['wall'])} s vs {s_(sc['wall'])} s = {x:.2f}×", verdict(x >= 10),
                     "" if x >= 10 else f"short by {10 / x:.1f}×"))
        x = py["wall"] / pr["wall"]
        rows.append((f"Batch scoring: ≥ 10× the Python path ({label} rows, `predict` vs Python, wall)",
                     f"{s_(py['wall'])} s vs {s_(pr['wall'])} s = {x:.1f}×", verdict(x >= 10),
                     "" if x >= 10 else f"short by {10 / x:.1f}×"))
    gb = [n for n in sizes if ((res["sizes"][n].get("batch") or {}).get("predict_gbdt"))]
    if gb:
        n = gb[-1]
        b = res["sizes"][n]["batch"]
        g = b["predict_gbdt"]
        scale = max(1_000_000 / b["rows"], 1)
        t = g.get("inproc")
        ok = t is not None and t * scale < 1.0
        rows.append((f"Batch prediction with gbdt: 1M rows < 1 s in-process (measured at "
                     f"{n_(b['rows'])} rows: `predict`)",
                     f"{s_(t, 3)} s in-process, {s_(g['wall'])} s wall"
                     + ("" if b["rows"] >= 1_000_000 else
                        f"; ≈ {s_(None if t is None else t * scale, 3)} s per 1M"),
                     verdict(ok), "" if ok or t is None else f"{t * scale:.1f}× the bar"))
    for n in sizes:
        g = res["sizes"][n].get("gbdt_lightgbm")
        if not g:
            continue
        label = f"gbdt vs LightGBM ({n_(n)}, same settings, {g.get('threads', 2)} threads): no slower, AUC within 0.003"
        if "error" in g:
            rows.append((label, "failed: " + g["error"].splitlines()[0][:80], "–", ""))
            continue
        c, k = g["churnguard"], g["lightgbm"]
        if None in (c["fit"], k["fit"], c["auc"], k["auc"]):
            rows.append((label, f"fit {s_(c['fit'])} vs {s_(k['fit'])} s (– = stopped at the time limit)",
                         verdict(c["fit"] is not None and k["fit"] is None), ""))
            continue
        faster = c["fit"] <= k["fit"]
        close = c["auc"] >= k["auc"] - 0.003
        why = []
        if not faster:
            why.append(f"{c['fit'] / k['fit']:.2f}× slower")
        if not close:
            why.append(f"AUC {k['auc'] - c['auc']:.4f} lower")
        rows.append((label, f"fit {s_(c['fit'])} vs {s_(k['fit'])} s; AUC {c['auc']:.4f} vs "
                     f"{k['auc']:.4f}", verdict(faster and close), ", ".join(why)))
    for n in sizes:
        o = res["sizes"][n].get("oracle")
        if not o:
            continue
        label = f"Oracle gap ({n_(n)}): champion within 0.01 of the snapshot-state oracle"
        if o.get("timed_out") or o.get("gap") is None:
            rows.append((label, "not measured (stopped at the time limit)", "–", ""))
            continue
        ok = o["gap"] <= 0.01
        rows.append((label, f"{o['champion']} {o['champion_auc']:.4f} vs oracle "
                     f"{o['snapshot_auc']:.4f}: gap {o['gap']:.4f}", verdict(ok),
                     "" if ok else f"{o['gap'] - 0.01:.4f} over"))
    for name, fl in (res.get("flat") or {}).items():
        best = (fl.get("peers") or {}).get("best")
        for kind in ("default", "tuned"):
            r = fl.get(kind)
            label = (f"Flat table {name}: churnguard's champion ({kind}"
                     + (f", --tune --budget {fl.get('budget', '60s')}" if kind == "tuned" else "")
                     + ") ≥ the best of XGBoost (CV grid), LightGBM, CatBoost")
            if not r or r.get("timed_out") or not best or r.get("champion_auc") is None:
                rows.append((label, "not measured" + (f": {fl['error'].splitlines()[0][:80]}"
                                                     if fl.get("error") else ""), "–", ""))
                continue
            ok = r["champion_auc"] >= best["test_roc_auc"]
            rows.append((label, f"{r['champion']} {r['champion_auc']:.4f} vs {best['family']} "
                         f"{best['test_roc_auc']:.4f}", verdict(ok),
                         "" if ok else f"{best['test_roc_auc'] - r['champion_auc']:.4f} lower"))
    for n in sizes:
        f = res["sizes"][n].get("features")
        if not f:
            continue
        cg, pd_ = f["churnguard"], f["pandas"]
        x = pd_["inproc"] / cg["inproc"] if cg.get("inproc") else None
        xw = pd_["wall"] / cg["wall"]
        rows.append((f"Features ≥ 5× pandas ({n_(n)} customers)",
                     f"in-process {s_(cg.get('inproc'))} s vs {s_(pd_['inproc'])} s = "
                     f"{x:.1f}×; wall {xw:.1f}×" if x else "–",
                     verdict(x is not None and x >= 5),
                     "" if x and x >= 5 else (f"short by {5 / x:.1f}×" if x else "")))
    for n in sizes:
        t = res["sizes"][n].get("training") or {}
        for fam in ("logistic", "tree", "neural"):
            if fam not in t:
                continue
            c, k = t[fam]["churnguard"], t[fam]["sklearn"]
            if c["fit"] is None or k["fit"] is None or c["auc"] is None or k["auc"] is None:
                rows.append((f"Training {fam} ({n_(n)}): not slower than scikit-learn at AUC ± 0.005",
                             f"fit {s_(c['fit'])} vs {s_(k['fit'])} s (– = stopped at the time limit)",
                             verdict(c["fit"] is not None and k["fit"] is None),
                             "churnguard stopped at the time limit" if c["fit"] is None else ""))
                continue
            faster = c["fit"] <= k["fit"]
            equal = c["auc"] >= k["auc"] - 0.005
            why = []
            if not faster:
                why.append(f"{c['fit'] / k['fit']:.2f}× slower")
            if not equal:
                why.append(f"AUC {k['auc'] - c['auc']:.4f} lower")
            rows.append((f"Training {fam} ({n_(n)}): not slower than scikit-learn at AUC ± 0.005",
                         f"fit {s_(c['fit'])} vs {s_(k['fit'])} s; AUC {c['auc']:.4f} vs {k['auc']:.4f}",
                         verdict(faster and equal), ", ".join(why)))
    return rows


def render(res, args):
    m = res["machine"]
    L = []
    w = L.append
    w("# Benchmarks: churnguard against the Python stack")
    w("")
    w("Generated by `bench/run` (issue 7); do not edit by hand: rerun it. The analysis of the "
      "misses at the end comes from `bench/ANALYSIS.md`.")
    w("")
    w("```")
    w(res.get("command_line", args.command_line))
    w("```")
    w("")
    w("## Machine and software")
    w("")
    w(f"- CPU: {m['cpu']}, {m['nproc']} cores (`nproc`), {m['mem_gib']} GiB memory, "
      f"Linux {m['kernel']}")
    w(f"- Date: {m['date']}; repository HEAD at the run {m['commit']}; the churnguard release "
      f"binary measured: sha256 {m['binary_sha256']}…, built {m.get('binary_built', '?')}; "
      f"{m['rustc']}")
    w(f"- Python {m['python']}: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
      + f" (pinned in `bench/requirements.txt`); {m['wrk']}")
    if res.get("membw"):
        w(f"- Memory bandwidth (numpy copy of 512 MiB, best of 7): copy "
          f"{res['membw']['copy_gb_s']:.1f} GB/s (read + write), read {res['membw']['read_gb_s']:.1f} GB/s")
    w(f"- Load average (1 min) at start {res['load_start']:.2f}, at the end "
      f"{res.get('load_end', 0):.2f}. Another engineer may have been compiling on the same 2 "
      "cores during the run, so absolute numbers carry noise; the pairs were alternated "
      "(churnguard, then the peer, then the peer first) so both sides saw the same load.")
    loads = ", ".join(f"{n_(n)} {res['sizes'][n].get('load_before', 0):.1f}"
                      for n in sorted(res["sizes"], key=int))
    if loads:
        w(f"- Load average when each size started: {loads}"
          + (f"; before the online test {res['load_before_online']:.1f}"
             if "load_before_online" in res else "") + ".")
    w("")
    w("## Method")
    w("")
    # The run's own repetition count (a --render-only run does not know it).
    m = re.search(r"--reps[ =](\d+)", res.get("command_line", ""))
    reps = int(m.group(1)) if m else args.reps
    w(f"- Each comparison runs both sides as separate processes, alternating, "
      f"{reps} repetition{'s' if reps != 1 else ''} unless the first run took longer than {args.long_run_s:.0f} s "
      "(then once); the tables show medians (every run is in `results.json`).")
    w("- *wall*: the whole command, process start to exit, as a user runs it (includes "
      "Python's imports and churnguard's start-up, which loads libtorch: about 0.5 s). "
      "*in-process*: the time the tool reports for its work (churnguard's own timer; "
      "the Python scripts time from reading the input to writing the output, imports "
      "excluded). Ratios on in-process time are the fairer ones for small sizes.")
    w("- *peak RSS*: `ru_maxrss` of the process from `wait4` (servers: `VmHWM` summed over the "
      "server's processes after the load test).")
    w("- Data: `churnguard generate --customers N --months 24 --seed 42`; features at the 6 "
      "default quarterly snapshots. churnguard trains a feature table by a rolling-origin "
      "backtest over the last 3 snapshots: at each origin it fits on the rows whose 90-day "
      "horizon has ended by then (its *window*) and tests on the origin's rows; the earlier "
      "origins validate and calibrate, the last origin is the test. Its final model is the last "
      "origin's, fitted on that window. The Python peers (`bench/peers/common.py` "
      "`rolling_origins`) fit on exactly the same rows (every labelled row whose snapshot + 90 "
      "days ≤ the last snapshot) and test on exactly the last snapshot's rows, so both sides' "
      "test ROC-AUC is on the same rows. *fit* is churnguard's leaderboard `fit (s)`, one fit of "
      "the final model (preprocessing and model; the protocol fits 3, so churnguard's *wall* "
      "counts every origin, calibration, evaluation and saving), and the peer's time for "
      "preprocessing and model on the same rows. The peers' saved logistic model is calibrated "
      "as churnguard's (Platt on the earlier origins' out-of-time predictions), outside its fit "
      "time.")
    w("- gbdt vs LightGBM: `churnguard train --families gbdt --config $WORK/gbdt_fixed.toml` "
      "(300 trees, learning rate 0.1, 31 leaves, no depth limit, 20 rows per leaf, minimum leaf "
      "hessian 0.001, L2 1, no minimum gain, 255 bins, every column and row per tree, early "
      "stopping off) with `RAYON_NUM_THREADS=2`, against LightGBM's `LGBMClassifier` with the "
      "same settings (`bench/peers/train_lightgbm.py`: `n_jobs=2`, `OMP_WAIT_POLICY=passive`, "
      "categorical inputs as pandas `category` columns, LightGBM's native categorical splits) on "
      "the last origin's window, tested on the last snapshot's rows. The bar counts AUC up to "
      "0.003 below LightGBM's as met (higher is met too).")
    w("- Oracle gap: `churnguard train --truth <generated data>` with every family of the build "
      "(default settings) at the run's size closest to 100k: the champion's test ROC-AUC (last "
      "origin) against the oracle that knows each customer's true hidden state at the snapshot "
      "(no future), and the oracle that knows the true future hazards, on the same test rows.")
    w("- Flat tables (Telco, credit-card churners; full runs only, not `--smoke`: CatBoost alone "
      "takes about 40 s per data set): `churnguard train --data X --schema S --no-promote` with "
      "default settings (every family; stratified hash split, seed 42, 20% test; 5-fold CV on "
      "the rest) and again with `--tune --budget 60s`, against `bench/peers/flat_quality.py` on "
      "the same test rows (XGBoost with a CV grid over depth and learning rate choosing its "
      "trees by early stopping, LightGBM and CatBoost with library defaults, 2 threads each).")
    w("- Batch scoring scores exactly N rows: the latest N rows of the size's feature table "
      "(the last snapshots' active customers), relabelled to one snapshot with unique ids. "
      "`churnguard predict` writes probabilities; `churnguard score` does probability, "
      "churn type, reasons, CLV, health, band, interventions and KPI and saves the run to "
      "SQLite; the Python path does `predict_proba`, Platt, the health index and band "
      "(the same arithmetic, vectorised) and writes Parquet.")
    w("- Online: the Telco logistic model; wrk 4.1, 2 threads, 32 connections, "
      f"{args.warmup_s} s warm-up then {args.duration_s} s measured, Lua script posting the "
      "JSON body (`bench/post.lua`), loopback, the same 2 cores shared by server and load "
      "generator. Servers: `churnguard serve` (log lines to a file), FastAPI + uvicorn "
      "(2 workers, uvloop, httptools, no access log) + scikit-learn doing the same work "
      "(`bench/peers/fastapi_app.py`), and a bare axum 0.8 JSON echo (`bench/echo`).")
    w("")
    w("## Targets")
    w("")
    w("| target | measured | verdict | by how much |")
    w("| --- | --- | --- | --- |")
    for t in targets(res):
        w("| " + " | ".join(t) + " |")
    w("")

    sizes = sorted(res["sizes"], key=int)
    w("## Feature pipeline")
    w("")
    w("`churnguard features` (loads and validates every table, builds the point-in-time "
      "features at 6 snapshots, writes Parquet) vs `bench/peers/features_pandas.py` (the same "
      "features in pandas from the same Parquet tables, no validation).")
    w("")
    w("| customers | rows | churnguard wall | in-process | peak RSS | pandas wall | in-process | peak RSS | speed-up (in-process) | (wall) | columns agreeing |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        f = res["sizes"][n].get("features")
        if not f:
            w(f"| {n_(n)} | {res['sizes'][n].get('error', 'not run')[:80]} |" + " |" * 9)
            continue
        c, p = f["churnguard"], f["pandas"]
        ag = f["agreement"]
        cols = ag.get("columns", {})
        ok = sum(1 for v in cols.values() if v == 0)
        w(f"| {n_(n)} | {ag['rows'][0]:,} | {s_(c['wall'])} s | {s_(c.get('inproc'))} s | "
          f"{mib(c['rss_mib'])} | {s_(p['wall'])} s | {s_(p.get('inproc'))} s | {mib(p['rss_mib'])} | "
          f"{r_(p.get('inproc'), c.get('inproc'))} | {r_(p['wall'], c['wall'])} | "
          f"{ok}/{len(cols)} on {ag.get('sample', 0):,} sampled rows |")
    w("")
    w("## Training")
    w("")
    w("Fit time (one fit of the final model: preprocessing + model) and test ROC-AUC on the same "
      "test rows (the last backtest origin's).")
    w("")
    w("| customers | family | train rows | churnguard fit | scikit-learn fit | sklearn/churnguard | churnguard AUC | scikit-learn AUC | Δ AUC | churnguard wall, RSS | scikit-learn wall, RSS |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        t = res["sizes"][n].get("training") or {}
        for fam in ("logistic", "tree", "neural"):
            if fam not in t:
                continue
            c, k = t[fam]["churnguard"], t[fam]["sklearn"]
            peer = {"logistic": "LogisticRegression", "tree": "DecisionTreeClassifier",
                    "neural": "MLPClassifier"}[fam]
            a4 = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
            d = ("–" if c["auc"] is None or k["auc"] is None else f"{c['auc'] - k['auc']:+.4f}")
            w(f"| {n_(n)} | {fam} vs {peer} | {t[fam]['rows']['train']:,} | {s_(c['fit'])} s | "
              f"{s_(k['fit'])} s | {r_(k['fit'], c['fit'])} | {a4(c['auc'])} | {a4(k['auc'])} | "
              f"{d} | {s_(c['wall'])} s, {mib(c['rss_mib'])} | "
              f"{s_(k['wall'])} s, {mib(k['rss_mib'])} |")
        if "xgboost" in t:
            x = t["xgboost"]["python"]
            w(f"| {n_(n)} | XGBoost (reference) | | | {s_(x['fit'])} s | | | {x['auc']:.4f} | | | "
              f"{s_(x['wall'])} s, {mib(x['rss_mib'])} |")
    w("")
    w("## Gradient boosting: churnguard gbdt vs LightGBM")
    w("")
    w("The same boosting settings and 2 threads each, on the same training and test rows (see "
      "Method). *fit*: churnguard's leaderboard `fit (s)` (one fit of the final model) and "
      "LightGBM's `fit` (with the category columns and its Dataset); *wall*: churnguard's whole "
      "`train` (3 backtest origins, calibration, evaluation, saving) and the peer's whole "
      "script (imports, reading Parquet, one fit).")
    w("")
    w("| customers | train rows | test rows | churnguard fit | LightGBM fit | LightGBM/churnguard | churnguard AUC | LightGBM AUC | Δ AUC | churnguard wall, RSS | LightGBM wall, RSS | default gbdt AUC, fit |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    a4 = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
    for n in sizes:
        g = res["sizes"][n].get("gbdt_lightgbm")
        d = res["sizes"][n].get("gbdt_default") or {}
        if not g:
            continue
        if "error" in g:
            w(f"| {n_(n)} | failed: {g['error'].splitlines()[0][:100]} |" + " |" * 10)
            continue
        c, k = g["churnguard"], g["lightgbm"]
        rows_ = g.get("rows") or g.get("churnguard_rows") or {}
        dd = ("–" if c["auc"] is None or k["auc"] is None else f"{c['auc'] - k['auc']:+.4f}")
        w(f"| {n_(n)} | {rows_.get('train', 0):,} | {rows_.get('test', 0):,} | {s_(c['fit'])} s | "
          f"{s_(k['fit'])} s | {r_(k['fit'], c['fit'])} | {a4(c['auc'])} | {a4(k['auc'])} | {dd} | "
          f"{s_(c['wall'])} s, {mib(c['rss_mib'])} | {s_(k['wall'])} s, {mib(k['rss_mib'])} | "
          f"{a4(d.get('auc'))}, {s_(d.get('fit'))} s |")
    w("")
    gl = [res["sizes"][n]["gbdt_lightgbm"] for n in sizes
          if (res["sizes"][n].get("gbdt_lightgbm") or {}).get("lightgbm_version")]
    if gl:
        g = gl[-1]
        w(f"LightGBM {g['lightgbm_version']}, `OMP_WAIT_POLICY={g.get('omp_wait_policy')}`; "
          f"its settings: `{g.get('lightgbm_settings')}`; churnguard's `[gbdt]`: "
          f"`{g.get('settings')}`. Both test on the snapshot {g.get('origin')}. *default gbdt*: "
          "churnguard's gbdt with its default settings (500 trees at most, learning rate 0.05, "
          "15 leaves, early stopping on a tenth of the window's customers), the model the batch "
          "section times.")
        w("")
    w("## Oracle gap")
    w("")
    orc = [(n, res["sizes"][n]["oracle"]) for n in sizes if res["sizes"][n].get("oracle")]
    if orc:
        w("Default training (`churnguard train --truth`) against the generator's ground truth, "
          "on the last backtest origin's test rows.")
        w("")
        w("| customers | test rows | champion | champion ROC-AUC | oracle at the snapshot state | gap | oracle with the true hazards | gap | every family's test ROC-AUC | train wall |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for n, o in orc:
            if o.get("timed_out") or "families" not in o:
                w(f"| {n_(n)} | stopped at the time limit |" + " |" * 8)
                continue
            fams = ", ".join(f"{f} {a4(r['roc_auc'])}" for f, r in o["families"].items())
            gap_h = (None if o.get("hazard_auc") is None or o.get("champion_auc") is None
                     else o["hazard_auc"] - o["champion_auc"])
            w(f"| {n_(n)} | {(o.get('rows') or {}).get('test', 0):,} | {o['champion']} | "
              f"{a4(o['champion_auc'])} | {a4(o.get('snapshot_auc'))} | {a4(o.get('gap'))} | "
              f"{a4(o.get('hazard_auc'))} | {a4(gap_h)} | {fams} | {s_(o.get('wall'))} s |")
        w("")
        w("The snapshot-state oracle is the best any model of the snapshot's data could do "
          "without seeing the future; the true-hazard oracle also knows what happens within the "
          "horizon, so no model can reach it.")
    else:
        w("Not measured in this run (`--smoke` skips it; a full run measures it at the size "
          "closest to 100k).")
    w("")
    w("## Batch scoring")
    w("")
    w("| customers | rows scored | `predict` wall | rows/s | `score` wall | in-process | rows/s (wall) | Python wall | compute | rows/s (wall) | Python/`score` (wall) | Python/`predict` (wall) | peak RSS predict, score, Python |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        b = res["sizes"][n].get("batch")
        if not b:
            continue
        pr, sc, py = b["predict"], b["score"], b["python"]
        rows = b["rows"]
        w(f"| {n_(n)} | {rows:,} | {s_(pr['wall'])} s | {rate(rows, pr['wall'])} | {s_(sc['wall'])} s | "
          f"{s_(sc.get('inproc'))} s | {rate(rows, sc['wall'])} | {s_(py['wall'])} s | "
          f"{s_(py.get('inproc'))} s | {rate(rows, py['wall'])} | {r_(py['wall'], sc['wall'])} | "
          f"{r_(py['wall'], pr['wall'])} | {mib(pr['rss_mib'])}, {mib(sc['rss_mib'])}, "
          f"{mib(py['rss_mib'])} |")
    w("")
    ag = [(n, res["sizes"][n]["batch"].get("agreement")) for n in sizes
          if res["sizes"][n].get("batch")]
    for n, a in ag:
        if a and "error" not in a:
            w(f"- {n_(n)}: the two paths agree: probability correlation {a['prob_corr']:.4f} "
              f"(different fits of the same model), mean |Δ health| {a['health_mean_abs_diff']:.2f} "
              f"points, same band for {100 * a['band_agreement']:.1f}% of {a['rows']:,} customers.")
    w("")
    gp = [(n, res["sizes"][n]["batch"]) for n in sizes
          if (res["sizes"][n].get("batch") or {}).get("predict_gbdt")]
    if gp:
        w("**Prediction with gbdt** (`churnguard predict` with the default-settings gbdt model, "
          "on the same rows, in the same repetitions; in-process: the time `predict` prints):")
        w("")
        w("| customers | rows | gbdt `predict` in-process | wall | rows/s (in-process) | logistic `predict` in-process | wall | gbdt/logistic (in-process) | model |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for n, b in gp:
            g, pr = b["predict_gbdt"], b["predict"]
            m = b.get("gbdt_model") or {}
            w(f"| {n_(n)} | {b['rows']:,} | {s_(g.get('inproc'), 3)} s | {s_(g['wall'])} s | "
              f"{rate(b['rows'], g.get('inproc'))} | {s_(pr.get('inproc'), 3)} s | "
              f"{s_(pr['wall'])} s | {r_(g.get('inproc'), pr.get('inproc'))} | "
              f"{m.get('source') or ''} |")
        w("")
    w("**Physical limits** (logistic model):")
    w("")
    w("| rows | input bytes (f64 numeric + u32 codes) | at memory read bandwidth | multiply-adds | at peak FMA rate | `predict` wall | `score` in-process |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        lim = res["sizes"][n].get("limits")
        b = res["sizes"][n].get("batch")
        if not lim:
            continue
        w(f"| {b['rows']:,} | {lim['bytes'] / 1e6:.1f} MB ({lim['bytes_per_row']} B/row) | "
          f"{1e3 * lim['memory_s']:.2f} ms | {lim['macs'] / 1e6:.1f} M ({lim['macs_per_row']}/row, "
          f"{lim['width']} encoded columns) | {1e3 * lim['compute_s']:.3f} ms | "
          f"{s_(b['predict']['wall'])} s | {s_(b['score'].get('inproc'))} s |")
    w("")
    w("The limits assume the inputs already in memory as dense arrays; peak FMA rate = cores × "
      "clock × 2 FMA units × 4 f64 lanes. Both are orders of magnitude below the measured times: "
      "scoring is bound by I/O, conversion and bookkeeping, not by the model.")
    w("")
    w("## Flat tables: quality against XGBoost, LightGBM and CatBoost")
    w("")
    flat = res.get("flat") or {}
    if flat:
        w("Test ROC-AUC on the same held-out rows (stratified hash split, seed 42, 20% test). "
          "churnguard's figures are its leaderboard's test column; the champion (*) is chosen by "
          "cross-validated ROC-AUC on the training rows, never by the test rows.")
        w("")
        w("| data set | rows (train / test) | model | test ROC-AUC | PR-AUC | fit (s) | whole run |")
        w("| --- | --- | --- | --- | --- | --- | --- |")
        for name, fl in flat.items():
            peers = fl.get("peers") or {}
            pr = peers.get("rows") or {}
            rtxt = (f"{pr['train']['all']:,} / {pr['test']['all']:,}" if pr else
                    (lambda r: f"{r['train']:,} / {r['test']:,}" if r else "–")(
                        (fl.get("default") or {}).get("rows")))
            if fl.get("error"):
                w(f"| {name} | {rtxt} | failed: {fl['error'].splitlines()[0][:100]} | | | | |")
            for kind in ("default", "tuned"):
                r = fl.get(kind)
                if not r:
                    continue
                label = "churnguard" + (f" --tune --budget {fl.get('budget', '60s')}"
                                        if kind == "tuned" else " (default settings)")
                if r.get("timed_out"):
                    w(f"| {name} | {rtxt} | {label}: stopped at the time limit | | | | |")
                    continue
                for fam, row in r["families"].items():
                    w(f"| {name} | {rtxt} | {label}: {fam}{' *' if row['champion'] else ''} | "
                      f"{a4(row['roc_auc'])} | {a4(row['pr_auc'])} | {s_(row['fit'])} | "
                      + (f"{s_(r['wall'])} s" if row["champion"] else "") + " |")
                for fam in r.get("skipped", []):
                    w(f"| {name} | {rtxt} | {label}: {fam} skipped (not in this build) | | | | |")
            for fam, p in (peers.get("families") or {}).items():
                extra = ""
                st = p.get("settings") or {}
                if fam == "xgboost":
                    extra = (f" (CV grid: depth {st.get('max_depth')}, rate "
                             f"{st.get('learning_rate')}, {st.get('n_estimators')} trees; grid "
                             f"{s_(p.get('cv_seconds'))} s)")
                best = (peers.get("best") or {}).get("family") == fam
                w(f"| {name} | {rtxt} | {fam}{extra}{' (best peer)' if best else ''} | "
                  f"{p['test_roc_auc']:.4f} | {p['test_pr_auc']:.4f} | {s_(p['fit_seconds'])} | "
                  + (f"{s_(peers.get('wall'))} s (all three)" if best else "") + " |")
        w("")
        for name, fl in flat.items():
            best = (fl.get("peers") or {}).get("best")
            parts = []
            for kind in ("default", "tuned"):
                r = fl.get(kind) or {}
                if r.get("champion_auc") is not None and best:
                    d = r["champion_auc"] - best["test_roc_auc"]
                    parts.append(f"{kind}: champion {r['champion']} {r['champion_auc']:.4f}, "
                                 f"{d:+.4f} against the best peer ({best['family']} "
                                 f"{best['test_roc_auc']:.4f}): "
                                 + ("at least the best peer" if d >= 0 else "below it"))
            if parts:
                w(f"- {name}: " + "; ".join(parts) + ".")
        vers = next((fl["peers"].get("versions") for fl in flat.values()
                     if (fl.get("peers") or {}).get("versions")), None)
        if vers:
            w("- Peer versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".")
    else:
        w("Not measured in this run: " + ("`--smoke` skips it (CatBoost alone takes about 40 s "
          "per data set)." if "--smoke" in res.get("command_line", "") else
          "no Telco or credit-card churners data given."))
    w("")
    on = res.get("online")
    w("## Online scoring")
    w("")
    if on:
        w("| customers/request | server | req/s (median) | customers/s | p50 | p99 | errors | peak RSS | runs (req/s) |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for b in (1, 100):
            for s in ("echo", "churnguard", "fastapi"):
                d = on[s].get(b) or on[s].get(str(b))
                name = {"echo": "axum echo (ceiling)", "churnguard": "churnguard serve",
                        "fastapi": "FastAPI + uvicorn ×2 + scikit-learn"}[s]
                w(f"| {b} | {name} | {d['rps']:.0f} | {d['rps'] * b:,.0f} | {s_(d['p50_ms'])} ms | "
                  f"{s_(d['p99_ms'])} ms | {d['errors']} | {mib(on[s]['peak_rss_mib'])} | "
                  + ", ".join(f"{x:.0f}" for x in d["all_rps"]) + " |")
    else:
        w("Not run: " + res.get("online_error", "--smoke skips the load test"
                                if "--smoke" in res.get("command_line", "") else
                                "no Telco data or no echo server (see the notes)") + ".")
    w("")
    if res["notes"] or res["failures"]:
        w("## Notes, skipped sizes and failures")
        w("")
        for x in res["notes"]:
            w(f"- {x}")
        for x in res["failures"]:
            w(f"- FAILED: {x.splitlines()[0]}")
        for n in sizes:
            if res["sizes"][n].get("error"):
                w(f"- {n_(n)}: {res['sizes'][n]['error'].splitlines()[0]}")
        w("")
    w("## Exact commands")
    w("")
    w("`$WORK` is the bench work directory (`$HOME/.cache/churnguard/bench-work`); `churnguard` "
      "and `bench-echo` the binaries copied to `$WORK/bin`; `python` and `uvicorn` the bench "
      "venv's; `$REP` the repetition (each has its own registry and store), `$PORT` a free "
      "loopback port. Every repetition runs the same commands.")
    w("")
    w("```")
    seen = set()
    for what, c in res["commands"]:
        c = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", c)
        c = re.sub(r"--port \d+", "--port $PORT", c)
        c = re.sub(r"(models|score|serve|gbdt-fixed)-\d+", r"\1-$REP", c)
        c = re.sub(r"\S*/venv-bench-[0-9a-f]+/bin/", "", c)
        c = re.sub(r"\d{8}-\d{6,9}-(\w+?)-[0-9a-f]+",
                   lambda m: f"${m.group(1).upper()}_MODEL_ID", c)
        c = c.replace("$WORK/bin/churnguard", "churnguard").replace("$WORK/bin/bench-echo", "bench-echo")
        if (what, c) in seen:
            continue
        seen.add((what, c))
        w(f"# {what}")
        w(c)
    w("```")
    w("")
    analysis = os.path.join(HERE, "ANALYSIS.md")
    if os.path.exists(analysis):
        w(open(analysis).read().rstrip())
        w("")
    return "\n".join(L) + "\n"
