-- flexus-agent store, version 8: tune jobs (crates/agent/src/tuner.rs), so that a job
-- accepted by one agent can be polled on any agent sharing the store and outlives a
-- restart. A job names the agent session that runs it (holder, session of the
-- `agents` table): a running job whose session is no longer alive was interrupted.
CREATE TABLE tune_jobs (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    holder      TEXT NOT NULL,
    session     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (namespace, pool, id)
);

CREATE INDEX tune_jobs_by_pool ON tune_jobs (namespace, pool, created_ms);
