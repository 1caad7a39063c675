-- A tune job's state in its own column (migrations/sqlite/0010_tune_job_state.sql), in
-- PostgreSQL: agents find the running jobs of a session that is gone and resume them.
ALTER TABLE tune_jobs ADD COLUMN state TEXT NOT NULL DEFAULT '';
UPDATE tune_jobs SET state = COALESCE(body::jsonb ->> 'state', '');
CREATE INDEX tune_jobs_running ON tune_jobs (created_ms) WHERE state = 'running';
