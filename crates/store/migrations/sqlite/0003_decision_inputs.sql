-- What each decision assumed: the playbook's effect (or the customer's
-- predicted uplift) and its cost, beside the expected value already stored.
ALTER TABLE interventions ADD COLUMN effect REAL NOT NULL DEFAULT 0;
ALTER TABLE interventions ADD COLUMN cost REAL NOT NULL DEFAULT 0;
