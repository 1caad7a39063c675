-- flexus-agent store, version 2: pushed metric datapoints and forecast history.

-- Datapoints pushed through POST .../pools/{name}/metrics. Bounded: the server drops
-- datapoints older than the push retention and keeps at most a fixed number per
-- (pool, metric) on every write. A retried push of the same (metric, at) replaces it.
CREATE TABLE pushed_metrics (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    metric      TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    value       REAL NOT NULL,
    PRIMARY KEY (namespace, pool, metric, at_ms)
) WITHOUT ROWID;

-- Which metric a pool's forecast history is of, and the newest sample it holds.
CREATE TABLE forecast_history (
    namespace       TEXT NOT NULL,
    pool            TEXT NOT NULL,
    metric          TEXT NOT NULL,
    bucket_seconds  REAL NOT NULL,
    last_sample_ms  INTEGER,
    PRIMARY KEY (namespace, pool)
);

-- The bucketed history itself (flexus_policy::forecast::buckets::Bucket), bounded by
-- the policy's prediction.history_window.
CREATE TABLE forecast_buckets (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    start_s     REAL NOT NULL,
    peak        REAL NOT NULL,
    covered     REAL NOT NULL,
    sum         REAL NOT NULL,
    PRIMARY KEY (namespace, pool, start_s)
) WITHOUT ROWID;
