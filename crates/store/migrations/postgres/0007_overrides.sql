-- Overrides staff set on a customer: a health band they know better than
-- the model (a service hold, a signed renewal) and/or no new interventions,
-- each with a reason and an expiry. Scoring runs apply the active ones and
-- keep the computed band beside the shown one (customer_scores.computed_band).
-- Rows are never deleted: an ended override keeps revoked_at/revoked_by.
CREATE TABLE IF NOT EXISTS overrides (
    id          BIGSERIAL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    band        TEXT,
    suppress    BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    revoked_by  TEXT
);
CREATE INDEX IF NOT EXISTS overrides_customer ON overrides (customer_id, expires_at);
ALTER TABLE customer_scores ADD COLUMN computed_band TEXT;
-- The owner's name as the run knew it, beside the id: the API, the web app
-- and exports show people, not ids.
ALTER TABLE customer_scores ADD COLUMN owner_name TEXT;
