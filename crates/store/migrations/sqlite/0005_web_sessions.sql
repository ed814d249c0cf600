-- Web sessions, so that every replica sharing the store knows a session
-- made on any of them. The key is the SHA-256 of the cookie's token: a
-- read of this table does not give out usable cookies.
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    owner      TEXT,
    csrf       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_expires ON web_sessions (expires_at);
