-- flexus-agent store, version 10: a tune job's state (running, done, failed) in its own
-- column, so that agents find the running jobs of a session that is gone and resume
-- them (crates/agent/src/tuner.rs) without reading every job's body.
ALTER TABLE tune_jobs ADD COLUMN state TEXT NOT NULL DEFAULT '';
UPDATE tune_jobs SET state = COALESCE(json_extract(body, '$.state'), '');
CREATE INDEX tune_jobs_running ON tune_jobs (created_ms) WHERE state = 'running';
