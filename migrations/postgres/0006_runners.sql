-- Several processes on one database (issue 17): which process runs a download (`runner`: its
-- host, pid and a random part), until when its claim holds unless renewed (`lease_until`, ms),
-- the speed it last measured (`speed_bps`), and which models folder its partial is in
-- (`folder_id`, the id in that folder's .localbrain-folder file), so any process can show the
-- progress, stop it, and take it over when its runner dies. Keep in step with the other backend.
ALTER TABLE model_downloads ADD COLUMN runner TEXT;
ALTER TABLE model_downloads ADD COLUMN lease_until BIGINT;
ALTER TABLE model_downloads ADD COLUMN speed_bps BIGINT;
ALTER TABLE model_downloads ADD COLUMN folder_id TEXT;
