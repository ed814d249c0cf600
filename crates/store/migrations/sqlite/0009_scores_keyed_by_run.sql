-- customer_scores keyed by (run_id, customer_id) in the table itself
-- (WITHOUT ROWID), and without the (customer_id, snapshot_date) index.
-- Why: a run's rows went into four B-trees (the rowid table, the primary
-- key's index, the customer index and the risk index); a 1M-customer run
-- wrote each row's key three times and its ~560 bytes through the WAL into
-- the database. Now a row lives in the key's B-tree, inserted in key order
-- (a new run's keys all sort after no existing key within the run, so the
-- inserts sweep one region), and the risk index is the only other tree.
-- A customer's history reads one primary-key probe per run
-- (records::customer_history), which the customer index used to answer.
CREATE TABLE customer_scores_by_run (
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
    computed_band     TEXT,
    owner_name        TEXT,
    PRIMARY KEY (run_id, customer_id)
) WITHOUT ROWID;
INSERT INTO customer_scores_by_run
    (run_id, customer_id, snapshot_date, name, owner, segment, churn_probability,
     p_involuntary, churn_type, clv, clv_cac, expected_loss, health, band, health_change,
     trend, profile, components, reasons, intervention, computed_band, owner_name)
SELECT run_id, customer_id, snapshot_date, name, owner, segment, churn_probability,
     p_involuntary, churn_type, clv, clv_cac, expected_loss, health, band, health_change,
     trend, profile, components, reasons, intervention, computed_band, owner_name
FROM customer_scores;
DROP TABLE customer_scores;
ALTER TABLE customer_scores_by_run RENAME TO customer_scores;
CREATE INDEX IF NOT EXISTS customer_scores_risk ON customer_scores (run_id, expected_loss DESC, customer_id);
