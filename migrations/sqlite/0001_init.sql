-- localbrain schema, SQLite. Times are Unix milliseconds. Keep in step with ../postgres/.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    created_at  BIGINT NOT NULL
);

-- One-time login links: only the SHA-256 of the token is kept.
CREATE TABLE login_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- Browser sessions: only the SHA-256 of the cookie value is kept.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE model_downloads (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model_id          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
                        ('pending', 'downloading', 'paused', 'verifying', 'installing',
                         'complete', 'failed', 'cancelled')),
    bytes_downloaded  BIGINT NOT NULL DEFAULT 0 CHECK (bytes_downloaded >= 0),
    total_bytes       BIGINT NOT NULL CHECK (total_bytes > 0),
    sha256_expected   TEXT NOT NULL CHECK (length(sha256_expected) = 64),
    -- ETag or Last-Modified of the first response, sent back as If-Range on resume.
    validator         TEXT,
    target_path       TEXT NOT NULL,
    partial_path      TEXT NOT NULL,
    error             TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    paused_at         BIGINT,
    completed_at      BIGINT
);

-- One download per (user, model) that still owns a partial file. Start relies on it.
CREATE UNIQUE INDEX model_downloads_one_open
    ON model_downloads (user_id, model_id)
    WHERE status IN ('pending', 'downloading', 'paused', 'verifying', 'installing', 'failed');

-- The user's list, newest first.
CREATE INDEX model_downloads_by_user ON model_downloads (user_id, created_at DESC);
