-- Tune jobs (migrations/sqlite/0008_tune_jobs.sql), in PostgreSQL types: polled on any
-- agent sharing the store; a running job whose session (holder, session of `agents`)
-- is no longer alive was interrupted.
CREATE TABLE tune_jobs (
    namespace   TEXT COLLATE "C" NOT NULL,
    pool        TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    created_ms  BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    session     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (namespace, pool, id)
);

CREATE INDEX tune_jobs_by_pool ON tune_jobs (namespace, pool, created_ms);
