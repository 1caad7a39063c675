-- The agent session that answers each request to the advisor
-- (migrations/sqlite/0009_advice_runner.sql).
ALTER TABLE advice ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE advice ADD COLUMN session TEXT NOT NULL DEFAULT '';
