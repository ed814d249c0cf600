-- churnguard store, version 1 (SQLite). Times are seconds since 1970-01-01 UTC.
CREATE TABLE IF NOT EXISTS scoring_runs (
    run_id        TEXT PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    snapshot_date TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    model_family  TEXT NOT NULL,
    source        TEXT NOT NULL,
    customers     INTEGER NOT NULL,
    summary       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_scores (
    run_id            TEXT NOT NULL REFERENCES scoring_runs(run_id),
    customer_id       TEXT NOT NULL,
    snapshot_date     TEXT NOT NULL,
    name              TEXT,
    owner             TEXT,
    segment           TEXT,
    churn_probability REAL NOT NULL,
    p_involuntary     REAL,
    churn_type        TEXT,
    clv               REAL NOT NULL,
    clv_cac           REAL,
    expected_loss     REAL NOT NULL,
    health            REAL NOT NULL,
    band              TEXT NOT NULL,
    health_change     REAL,
    trend             TEXT NOT NULL,
    profile           TEXT NOT NULL,
    components        TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    intervention      TEXT,
    PRIMARY KEY (run_id, customer_id)
);
CREATE INDEX IF NOT EXISTS customer_scores_customer ON customer_scores (customer_id, snapshot_date);
CREATE INDEX IF NOT EXISTS customer_scores_risk ON customer_scores (run_id, expected_loss DESC, customer_id);
CREATE TABLE IF NOT EXISTS interventions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id       TEXT NOT NULL,
    playbook          TEXT NOT NULL,
    rule              TEXT NOT NULL,
    channel           TEXT NOT NULL,
    owner_role        TEXT NOT NULL,
    owner             TEXT NOT NULL,
    priority          INTEGER NOT NULL,
    arm               TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_run       TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    due_at            INTEGER NOT NULL,
    last_seen_at      INTEGER NOT NULL,
    closed_at         INTEGER,
    churn_probability REAL NOT NULL,
    clv               REAL NOT NULL,
    expected_value    REAL NOT NULL,
    outcome           TEXT,
    outcome_note      TEXT,
    outcome_at        INTEGER,
    observed          TEXT
);
CREATE INDEX IF NOT EXISTS interventions_customer ON interventions (customer_id, playbook);
CREATE INDEX IF NOT EXISTS interventions_status ON interventions (status, owner);
CREATE TABLE IF NOT EXISTS kpi_snapshots (
    run_id      TEXT NOT NULL,
    role        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    composite   REAL NOT NULL,
    rank        INTEGER NOT NULL,
    top         INTEGER NOT NULL,
    card        TEXT NOT NULL,
    PRIMARY KEY (run_id, role, stage, employee_id)
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
