-- flexus-agent store, version 9: the agent session that answers each request to the
-- advisor (as tune_jobs, version 8), so that a request still pending when that agent
-- stopped reads as failed. Answers stored before this version have no session ('').
ALTER TABLE advice ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE advice ADD COLUMN session TEXT NOT NULL DEFAULT '';
