-- churnguard store, version 1 (PostgreSQL). Times are seconds since 1970-01-01 UTC.
CREATE TABLE IF NOT EXISTS scoring_runs (
    run_id        TEXT PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    snapshot_date TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    model_family  TEXT NOT NULL,
    source        TEXT NOT NULL,
    customers     BIGINT NOT NULL,
    summary       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_scores (
    run_id            TEXT NOT NULL REFERENCES scoring_runs(run_id),
    customer_id       TEXT NOT NULL,
    snapshot_date     TEXT NOT NULL,
    name              TEXT,
    owner             TEXT,
    segment           TEXT,
    churn_probability DOUBLE PRECISION NOT NULL,
    p_involuntary     DOUBLE PRECISION,
    churn_type        TEXT,
    clv               DOUBLE PRECISION NOT NULL,
    clv_cac           DOUBLE PRECISION,
    expected_loss     DOUBLE PRECISION NOT NULL,
    health            DOUBLE PRECISION NOT NULL,
    band              TEXT NOT NULL,
    health_change     DOUBLE PRECISION,
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
    id                BIGSERIAL PRIMARY KEY,
    customer_id       TEXT NOT NULL,
    playbook          TEXT NOT NULL,
    rule              TEXT NOT NULL,
    channel           TEXT NOT NULL,
    owner_role        TEXT NOT NULL,
    owner             TEXT NOT NULL,
    priority          BIGINT NOT NULL,
    arm               TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_run       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    due_at            BIGINT NOT NULL,
    last_seen_at      BIGINT NOT NULL,
    closed_at         BIGINT,
    churn_probability DOUBLE PRECISION NOT NULL,
    clv               DOUBLE PRECISION NOT NULL,
    expected_value    DOUBLE PRECISION NOT NULL,
    outcome           TEXT,
    outcome_note      TEXT,
    outcome_at        BIGINT,
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
    composite   DOUBLE PRECISION NOT NULL,
    rank        BIGINT NOT NULL,
    top         BIGINT NOT NULL,
    card        TEXT NOT NULL,
    PRIMARY KEY (run_id, role, stage, employee_id)
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
