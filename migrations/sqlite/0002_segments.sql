-- Per-segment progress of a parallel download, so a resume keeps every finished byte:
-- comma-separated `start-end:done` (end exclusive, done = bytes in the file from start).
-- NULL for a single-stream download, whose progress is the partial file's length.
ALTER TABLE model_downloads ADD COLUMN segments TEXT;
