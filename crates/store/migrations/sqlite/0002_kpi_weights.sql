-- Data-driven KPI weights beside the configured ones, per run, role and stage.
CREATE TABLE IF NOT EXISTS kpi_weights (
    run_id  TEXT NOT NULL,
    role    TEXT NOT NULL,
    stage   TEXT NOT NULL,
    weights TEXT NOT NULL,
    PRIMARY KEY (run_id, role, stage)
);
