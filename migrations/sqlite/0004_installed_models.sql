-- What localbrain knows about the model files in the models folder: when each was installed
-- and the last time its SHA-256 was checked. A file without a row (copied in, or installed by
-- an older localbrain) is "not checked yet". Keep in step with ../postgres/.
CREATE TABLE installed_models (
    model_id      TEXT PRIMARY KEY,
    size_bytes    BIGINT NOT NULL CHECK (size_bytes >= 0),
    -- The digest the file had when last checked (the catalog's when it matched).
    sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
    installed_at  BIGINT NOT NULL,
    verified_at   BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('verified', 'damaged'))
);

-- Set on the complete downloads of a model when its file is deleted: their view says "removed".
ALTER TABLE model_downloads ADD COLUMN removed_at BIGINT;
