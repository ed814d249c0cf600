"""The shadow challenger's cost on `POST /v1/score` (issue 16); run by bench/shadow.

Trains a gbdt challenger and a logistic champion on Telco, then serves the
same registry with and without the shadow pointer, alternating, under wrk
(2 threads, 32 connections, one customer a request), and reports requests/s
and p99 of each; then soaks the server with the shadow and samples its RSS.
Standard library only.
"""

import argparse
import csv
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import time
import urllib.request


def log(msg):
    print(f"[bench/shadow {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def body_of(telco, path):
    row = next(csv.DictReader(open(telco)))
    ints, floats = {"SeniorCitizen", "tenure"}, {"MonthlyCharges", "TotalCharges"}
    rec = {}
    for k, v in row.items():
        if k == "Churn":
            continue
        rec[k] = (int(v) if v.strip() else None) if k in ints else \
            (float(v) if v.strip() else None) if k in floats else v
    with open(path, "w") as f:
        json.dump({"customers": [rec]}, f, separators=(",", ":"))


def wrk(port, body, lua, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", lua,
                          f"http://127.0.0.1:{port}/v1/score"],
                         env=dict(os.environ, BODY=body), capture_output=True, text=True,
                         timeout=seconds + 60).stdout

    def lat(p):
        m = re.search(rf"^\s*{p}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else None

    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": lat(50), "p99_ms": lat(99),
            "errors": int(errs.group(1)) if errs else 0}


def start(a, reg, db, port, log_path):
    addr = f"127.0.0.1:{port}"
    cmd = [a.bin, "serve", "--no-auth", "--listen", addr, "--registry", reg,
           "--store", "sqlite://" + db, "--watch-secs", "0"]
    if a.sample_rate is not None:
        config = os.path.join(a.work, "churnguard.toml")
        with open(config, "w") as f:
            f.write(f"[serve.shadow]\nsample_rate = {a.sample_rate}\n")
        cmd += ["--config", config]
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    body = open(os.path.join(a.work, "body-1.json"), "rb").read()
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited {proc.returncode}; see {log_path}")
        try:
            req = urllib.request.Request(f"http://{addr}/v1/score", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return proc
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not answer on {addr}")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main():
    ap = argparse.ArgumentParser()
    for k in ("bin", "work", "telco", "schema", "lua"):
        ap.add_argument(f"--{k}", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration-s", type=int, default=10)
    ap.add_argument("--warmup-s", type=int, default=2)
    ap.add_argument("--soak-s", type=int, default=60)
    ap.add_argument("--sample-rate", type=float, default=None,
                    help="[serve.shadow] sample_rate (default: the server's default)")
    a = ap.parse_args()
    reg = os.path.join(a.work, "models")
    shutil.rmtree(reg, ignore_errors=True)
    # The gbdt model shadows the logistic champion: the costlier of the two
    # is the one paid on top.
    for fam in ("gbdt", "logistic"):
        subprocess.run([a.bin, "train", "--data", a.telco, "--schema", a.schema, "--families", fam,
                        "--registry", reg, "--force-promote"], check=True, capture_output=True)
    ids = sorted(d for d in os.listdir(reg) if os.path.isfile(os.path.join(reg, d, "manifest.json")))
    champion = open(os.path.join(reg, "champion")).read().strip()
    shadow = next(i for i in ids if i != champion)
    log(f"champion {champion}, shadow {shadow}")
    body = os.path.join(a.work, "body-1.json")
    body_of(a.telco, body)
    shadow_file = os.path.join(reg, "shadow")
    res = {"without": [], "with": []}
    for i in range(a.reps):
        order = ["without", "with"] if i % 2 == 0 else ["with", "without"]
        for mode in order:
            if mode == "with":
                open(shadow_file, "w").write(shadow + "\n")
            elif os.path.exists(shadow_file):
                os.remove(shadow_file)
            db = os.path.join(a.work, f"serve-{mode}-{i}.db")
            for f in (db, db + "-wal", db + "-shm"):
                if os.path.exists(f):
                    os.remove(f)
            port = free_port()
            proc = start(a, reg, db, port, os.path.join(a.work, f"serve-{mode}-{i}.log"))
            try:
                wrk(port, body, a.lua, a.warmup_s)
                r = wrk(port, body, a.lua, a.duration_s)
            finally:
                stop(proc)
            res[mode].append(r)
            log(f"rep {i + 1}/{a.reps} {mode} shadow: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.3f} ms, "
                f"p99 {r['p99_ms']:.3f} ms, {r['errors']} errors")
    summary = {m: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
               for m, rs in res.items()}
    # The soak: the shadow on, RSS every 5 s, pairs flushed every 5 s.
    open(shadow_file, "w").write(shadow + "\n")
    db = os.path.join(a.work, "serve-soak.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    port = free_port()
    proc = start(a, reg, db, port, os.path.join(a.work, "serve-soak.log"))
    samples = []
    try:
        load = subprocess.Popen(["wrk", "-t2", "-c32", f"-d{a.soak_s}s", "-s", a.lua,
                                 f"http://127.0.0.1:{port}/v1/score"],
                                env=dict(os.environ, BODY=body), stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        while load.poll() is None:
            samples.append((round(time.time() - t0, 1), round(rss_mib(proc.pid), 1)))
            time.sleep(5)
        soak_out = load.stdout.read()
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        stop(proc)
    counters = dict(re.findall(r"^(churnguard_shadow_\w+) (\d+)$", metrics, re.M))
    soak_rps = re.search(r"Requests/sec:\s+([0-9.]+)", soak_out)
    overhead = summary["with"]["p99_ms"] / summary["without"]["p99_ms"] - 1
    result = {"champion": champion, "shadow": shadow, "sample_rate": a.sample_rate,
              "reps": res, "median": summary,
              "p99_overhead": overhead,
              "rps_ratio": summary["with"]["rps"] / summary["without"]["rps"],
              "soak": {"seconds": a.soak_s, "rss_mib": samples,
                       "rps": float(soak_rps.group(1)) if soak_rps else None,
                       "counters": counters}}
    json.dump(result, open(os.path.join(a.work, "result.json"), "w"), indent=2)
    print()
    print("| | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for m in ("without", "with"):
        s = summary[m]
        print(f"| {m} shadow | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} |")
    rate = "the default" if a.sample_rate is None else a.sample_rate
    print(f"\nsample rate {rate}: p99 overhead of the shadow: {100 * overhead:+.1f}% (bar: at most +15%); "
          f"throughput {100 * result['rps_ratio']:.1f}% of without")
    rss = [r for _, r in samples]
    if rss:
        print(f"soak {a.soak_s} s: RSS first {rss[0]} MiB, max {max(rss)} MiB, last {rss[-1]} MiB; "
              f"counters {counters}")


if __name__ == "__main__":
    main()
