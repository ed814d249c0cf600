-- Without the (customer_id, snapshot_date) index on customer_scores, as on
-- SQLite (see the SQLite migration of the same number for why): a run's
-- COPY maintains the primary key and the risk index only, and a
-- customer's history reads one primary-key probe per run.
DROP INDEX IF EXISTS customer_scores_customer;
