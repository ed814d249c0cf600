-- Outgoing deliveries of interventions (webhooks): one row per intervention
-- and webhook, an outbox. A row is made when a deliverer first sees a
-- treated, open intervention; it is `pending` until the receiver answers
-- 2xx (`delivered`) or the attempts run out (`dead`, listed for admins).
-- `next_attempt_at` doubles as a lease: a deliverer moves it forward before
-- sending, so two replicas do not send the same row at once.
CREATE TABLE IF NOT EXISTS deliveries (
    intervention_id BIGINT NOT NULL,
    webhook         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (intervention_id, webhook)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (webhook, status, next_attempt_at);
