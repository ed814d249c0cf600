-- Scores of the shadow challenger beside the champion's, for the same
-- request: the server answers with the champion and records both (sampled),
-- so `churnguard monitor` and the web app can compare them, and measure
-- each one's realised performance once the horizon has passed.
CREATE TABLE IF NOT EXISTS shadow_scores (
    id                   BIGSERIAL PRIMARY KEY,
    scored_at            BIGINT NOT NULL,
    customer_id          TEXT NOT NULL,
    champion_model       TEXT NOT NULL,
    shadow_model         TEXT NOT NULL,
    champion_probability DOUBLE PRECISION NOT NULL,
    shadow_probability   DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_scores_model ON shadow_scores (shadow_model, id);
