-- Answers of state-changing requests by their Idempotency-Key, so a retried
-- request gets the first answer instead of acting twice. A row whose status
-- is NULL is a request still in progress; keys are scoped by the caller.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
