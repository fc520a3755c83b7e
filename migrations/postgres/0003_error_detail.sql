-- The technical account of a failure (its causes), shown behind "Details"; `error` keeps the
-- plain words. Keep in step with ../sqlite/.
ALTER TABLE model_downloads ADD COLUMN error_detail TEXT;
