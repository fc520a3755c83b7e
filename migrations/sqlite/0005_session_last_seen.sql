-- Sessions end when idle as well as at their absolute end (issue 16): when each was last used,
-- written at most every few seconds to a minute (sessions::SessionRules). `expires_at` stays the
-- absolute end set at sign-in (the cookie's Max-Age). Keep in step with the other backend.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);
