"""The point-in-time features of `churnguard features`, in pandas.

Reads the same Parquet event tables, computes the same columns (see
src/features/mod.rs and the `.schema.json` beside a feature table) at the
same default snapshots (every 3 months from six months after the first
signup while the 90-day horizon is observed), and writes a Parquet file.

Written the way a data scientist would: vectorised pandas, one group-by per
table and snapshot, no Python loops over rows.

    python features_pandas.py --data DIR --out f.parquet [--snapshot latest]

Prints one JSON line: {"rows": N, "seconds": compute time (read to write,
imports excluded)}.
"""

import argparse
import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

H = 90
EPOCH = dt.date(1970, 1, 1)

# Event date columns (scheduled dates such as due_date excluded): the end of the data.
EVENT_DATES = {
    "customers": ["signup_date"],
    "leads": ["created_date"],
    "subscriptions": ["effective_date"],
    "invoices": ["invoice_date"],
    "payments": ["attempt_date"],
    "usage": ["week_start"],
    "tickets": ["opened_date", "resolved_date"],
    "surveys": ["survey_date"],
    "churn_events": ["churn_date"],
}
TABLES = ["customers", "subscriptions", "usage", "tickets", "surveys", "payments", "churn_events"]

OUTPUT = [
    "customer_id", "snapshot_date", "account_manager_id", "acquisition_rep_id", "cac",
    "plan", "contract", "region", "acquisition_channel", "tenure_days", "days_to_renewal",
    "renewal_within_90d", "seats", "mrr", "mrr_change_90d", "upgrades", "downgrades",
    "downgrades_90d", "recency_days", "sessions_30d", "sessions_prev_30d", "sessions_90d",
    "sessions_per_seat_30d", "usage_trend", "minutes_90d", "active_weeks_90d",
    "active_users_30d", "features_adopted", "tickets_90d", "severe_tickets_90d",
    "open_tickets", "resolution_hours_90d", "last_nps", "last_csat", "survey_response_rate",
    "payment_failures_90d", "late_payments_90d", "monetary_90d", "label_observed", "churned",
    "churn_type",
]


def read(path, columns=None):
    """A Parquet table with date columns as int32 days since 1970-01-01."""
    t = pq.read_table(path, columns=columns)
    cols = {}
    for name, c in zip(t.column_names, t.columns):
        if pa.types.is_date32(c.type):
            c = c.cast(pa.int32())
        elif pa.types.is_string_view(c.type) or pa.types.is_large_string(c.type):
            c = c.cast(pa.string())
        cols[name] = c
    return pa.table(cols).to_pandas()


def data_end(data):
    end = None
    for table, cols in EVENT_DATES.items():
        t = pq.read_table(f"{data}/{table}.parquet", columns=cols)
        for c in t.columns:
            m = pa.compute.max(c.cast(pa.int32())).as_py()
            if m is not None:
                end = m if end is None else max(end, m)
    return end


def add_months(d, k):
    m = d.month - 1 + k
    y, m = d.year + m // 12, m % 12 + 1
    last = [31, 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28, 31, 30, 31, 30,
            31, 31, 30, 31, 30, 31][m - 1]
    return dt.date(y, m, min(d.day, last))


def default_snapshots(first_signup, end):
    first = EPOCH + dt.timedelta(days=int(first_signup))
    last = end - (H - 1)
    out, k = [], 6
    s = add_months(first, k)
    while (s - EPOCH).days <= last:
        out.append((s - EPOCH).days)
        k += 3
        s = add_months(first, k)
    return out


def snapshot_frame(t, s, end):
    observed = s + H <= end
    c = t["customers"]
    ch = t["churn_events"]
    base = c[c["signup_date"] < s].merge(
        ch[["customer_id", "churn_date", "churn_type"]], on="customer_id", how="left"
    )
    base = base[base["churn_date"].isna() | (base["churn_date"] > s)]
    base = base[["customer_id", "signup_date", "churn_date", "churn_type", "account_manager_id",
                 "acquisition_rep_id", "cac", "contract", "region", "acquisition_channel"]]

    # Subscriptions in force: the latest change before s.
    sb = t["subscriptions"]
    sb = sb[sb["effective_date"] < s].sort_values("effective_date", kind="stable")
    g = sb.groupby("customer_id", sort=False)
    subs = pd.DataFrame({
        "plan": g["plan"].last(),
        "seats": g["seats"].last(),
        "mrr": g["mrr"].last(),
        "mrr_initial": g["mrr"].first(),
    })
    subs["mrr_90d_ago"] = sb[sb["effective_date"] <= s - 90].groupby("customer_id")["mrr"].last()
    up = (sb["change_type"] == "upgrade")
    down = (sb["change_type"] == "downgrade")
    counts = pd.DataFrame({
        "customer_id": sb["customer_id"],
        "upgrades": up.astype(np.uint32),
        "downgrades": down.astype(np.uint32),
        "downgrades_90d": (down & (sb["effective_date"] >= s - 90)).astype(np.uint32),
    }).groupby("customer_id").sum()
    subs = subs.join(counts)

    # Weekly usage, complete weeks only.
    u = t["usage"]
    avail = u["week_start"].to_numpy() + 7
    keep = avail <= s
    u = u[keep]
    avail = avail[keep]
    age = s - avail
    sess = u["sessions"].to_numpy()
    w30, w_prev, w90 = age < 28, (age >= 28) & (age < 56), age < 91
    active = sess > 0
    uu = pd.DataFrame({
        "customer_id": u["customer_id"].to_numpy(),
        "sessions_30d": np.where(w30, sess, 0),
        "sessions_prev_30d": np.where(w_prev, sess, 0),
        "sessions_90d": np.where(w90, sess, 0),
        "minutes_90d": np.where(w90, u["minutes"].to_numpy(), 0.0),
        "active_weeks_90d": (w90 & active).astype(np.uint32),
        "active_users_30d": np.where(w30, u["active_users"].to_numpy(), 0),
    })
    gu = uu.groupby("customer_id")
    usage = gu.sum()
    usage["active_users_30d"] = usage["active_users_30d"].astype(np.float64) / 4.0
    usage["features_adopted"] = u.groupby("customer_id")["features_adopted"].max()
    usage["last_active_day"] = (
        pd.Series(avail[active], index=u["customer_id"].to_numpy()[active])
        .groupby(level=0).max()
    )

    # Support tickets.
    tk = t["tickets"]
    tk = tk[tk["opened_date"] < s]
    age = s - tk["opened_date"]
    resolved = tk["resolved_date"]
    in90 = age < 90
    tt = pd.DataFrame({
        "customer_id": tk["customer_id"],
        "tickets_90d": in90.astype(np.uint32),
        "severe_tickets_90d": (in90 & (tk["severity"] >= 3)).astype(np.uint32),
        "open_tickets": (resolved.isna() | (resolved >= s)).astype(np.uint32),
    }).groupby("customer_id").sum()
    done90 = (resolved < s) & (resolved >= s - 90)
    tt["resolution_hours_90d"] = tk[done90].groupby("customer_id")["resolution_hours"].mean()

    # Surveys: latest answers and the response rate.
    sv = t["surveys"]
    sv = sv[sv["survey_date"] < s].sort_values(["survey_date", "survey_id"], kind="stable")
    answered = sv["score"].notna()
    surveys = pd.DataFrame({
        "answered": answered.astype(np.float64),
        "sent": 1.0,
        "customer_id": sv["customer_id"],
    }).groupby("customer_id").sum()
    surveys["survey_response_rate"] = surveys["answered"] / surveys["sent"]
    for kind, name in (("nps", "last_nps"), ("csat", "last_csat")):
        a = sv[answered & (sv["kind"] == kind)]
        surveys[name] = a.groupby("customer_id")["score"].last()
    surveys = surveys[["last_nps", "last_csat", "survey_response_rate"]]

    # Payments.
    p = t["payments"]
    p = p[p["attempt_date"] < s]
    in90 = (s - p["attempt_date"]) < 90
    ok = p["status"] == "succeeded"
    pay = pd.DataFrame({
        "customer_id": p["customer_id"],
        "payment_failures_90d": (in90 & (p["status"] == "failed")).astype(np.uint32),
        "late_payments_90d": (in90 & ok & (p["days_late"] > 0)).astype(np.uint32),
        "monetary_90d": np.where(in90 & ok, p["amount"], 0.0),
    }).groupby("customer_id").sum()

    df = base.set_index("customer_id")
    for part in (subs, usage, tt, surveys, pay):
        df = df.join(part, how="left")
    df = df.reset_index()

    for col, typ in (
        ("upgrades", np.uint32), ("downgrades", np.uint32), ("downgrades_90d", np.uint32),
        ("sessions_30d", np.int64), ("sessions_prev_30d", np.int64), ("sessions_90d", np.int64),
        ("minutes_90d", np.float64), ("active_weeks_90d", np.uint32),
        ("active_users_30d", np.float64), ("features_adopted", np.int64),
        ("tickets_90d", np.uint32), ("severe_tickets_90d", np.uint32),
        ("open_tickets", np.uint32), ("payment_failures_90d", np.uint32),
        ("late_payments_90d", np.uint32), ("monetary_90d", np.float64),
    ):
        df[col] = df[col].fillna(0).astype(typ)
    df["snapshot_date"] = s
    df["tenure_days"] = (s - df["signup_date"]).astype(np.int32)
    df["mrr_change_90d"] = df["mrr"] - df["mrr_90d_ago"].fillna(df["mrr_initial"])
    # Whole weeks since the last active week's end (as churnguard: the
    # snapshot's weekday must not shift every active customer's recency).
    since_active = (s - df["last_active_day"]) // 7 * 7
    df["recency_days"] = since_active.fillna(s - df["signup_date"]).astype(np.int32)
    df["label_observed"] = observed
    if observed:
        hit = df["churn_date"].notna() & (df["churn_date"] <= s + H)
        df["churned"] = hit.astype(np.int32)
        df["churn_type"] = df["churn_type"].where(hit, None)
    else:
        df["churned"] = pd.array([None] * len(df), dtype="Int32")
        df["churn_type"] = None
    seats = df["seats"].astype(np.float64)
    df["sessions_per_seat_30d"] = df["sessions_30d"] / np.where(seats > 1, seats, 1.0)
    term = np.select(
        [df["contract"] == "annual", df["contract"] == "two_year"], [365.25, 730.5], 30.4375
    )
    df["days_to_renewal"] = term - np.fmod(df["tenure_days"].astype(np.float64), term)
    df["renewal_within_90d"] = (df["days_to_renewal"] <= 90.0).astype(np.int32)
    df["usage_trend"] = np.log((df["sessions_30d"] + 1.0) / (df["sessions_prev_30d"] + 1.0))
    return df[OUTPUT]


def build(data, snapshot=None):
    t = {name: read(f"{data}/{name}.parquet") for name in TABLES}
    end = data_end(data)
    if snapshot == "latest":
        snaps = [end + 1]
    else:
        snaps = default_snapshots(t["customers"]["signup_date"].min(), end)
    out = pd.concat([snapshot_frame(t, s, end) for s in snaps], ignore_index=True)
    out = out.sort_values(["snapshot_date", "customer_id"], kind="stable", ignore_index=True)
    out["snapshot_date"] = pd.to_datetime(out["snapshot_date"], unit="D")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--snapshot", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    df = build(a.data, a.snapshot)
    df.to_parquet(a.out, index=False)
    print(json.dumps({"rows": len(df), "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
