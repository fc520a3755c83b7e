-- Why a failed download failed, as a small typed value (engine::Failure as JSON: its kind and
-- the facts its words need). The sentence a person reads is made from it when the row is read,
-- so a better words table rewords old rows too; `error` keeps the sentence written at the time,
-- shown for rows without a kind. Keep in step with ../sqlite/.
ALTER TABLE model_downloads ADD COLUMN error_kind TEXT;
