-- API keys (issue 19): programs send one as `Authorization: Bearer lb-…` to the
-- OpenAI-compatible API. As with login links and sessions only the SHA-256 of the secret is
-- kept, so a copy of the database opens nothing; `prefix` is the secret's first characters
-- (`lb-` and 8 hex digits), enough for a person to tell keys apart and far too few to guess
-- the rest. Revoking deletes the row, so the key fails at once. `last_used_at` is written at
-- most about once a minute (store::api_keys). Keep in step with the other backend.
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    -- Keys are named, revoked and listed by name, per user.
    UNIQUE (user_id, name)
);
