-- The models resolved on Hugging Face: each is a catalog entry of its own, pinned to one commit,
-- with the hub's LFS SHA-256 as its digest, so the engine downloads and verifies it exactly like
-- a shipped catalog model. Kept here (not in memory) so a restart, the CLI and another server on
-- the same database know it. Keep in step with ../postgres/.
CREATE TABLE hub_models (
    model_id    TEXT PRIMARY KEY,
    -- How a person named it (hf.co/ORG/REPO:QUANT), for `localbrain run hf.co/...` later.
    reference   TEXT NOT NULL,
    repo        TEXT NOT NULL,
    revision    TEXT NOT NULL CHECK (length(revision) = 40),
    file_path   TEXT NOT NULL,
    -- The catalog entry (ModelEntry) as JSON: url, sha256, size_bytes, params, context, license.
    entry       TEXT NOT NULL,
    card_url    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX hub_models_repo ON hub_models (repo);
