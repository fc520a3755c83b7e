-- One transfer per model (issue 17): a download started while another user's download of the
-- same model is running joins it instead of fetching the model a second time. `carrier_id` is
-- the download whose runner carries the shared transfer; the joined row has no runner and no
-- partial of its own, and mirrors the carrier's status and bytes. NULL for a row that carries
-- its own transfer. Keep in step with the other backend.
ALTER TABLE model_downloads ADD COLUMN carrier_id BIGINT;
CREATE INDEX model_downloads_carrier ON model_downloads (carrier_id);
