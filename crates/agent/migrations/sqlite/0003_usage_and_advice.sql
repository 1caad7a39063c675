-- flexus-agent store, version 3 (operator: cost report, advisor, dashboard).

-- Hourly usage rollups written by the usage recorder (crates/agent/src/cost/usage.rs):
-- instance-seconds by flavor and purchase type, ready capacity above demand, requests,
-- SLO-violation seconds and desired-count changes of one pool in one clock hour. Kept
-- small (a report over every pool scans it); the hour's samples are in usage_samples.
-- Bounded by cost.retention.
CREATE TABLE usage_hours (
    namespace           TEXT NOT NULL,
    pool                TEXT NOT NULL,
    hour                INTEGER NOT NULL,   -- start of the hour, s since the epoch
    flavor              TEXT NOT NULL,      -- the pool's flavor
    billed_seconds      REAL NOT NULL,
    ready_seconds       REAL NOT NULL,
    idle_seconds        REAL NOT NULL,
    load_seconds        REAL NOT NULL,      -- seconds with a load signal
    requests            REAL NOT NULL,
    violation_seconds   REAL NOT NULL,
    actions             INTEGER NOT NULL,
    covered_seconds     REAL NOT NULL,
    on_demand_seconds   REAL NOT NULL,      -- instance-seconds of `flavor`, on demand
    spot_seconds        REAL NOT NULL,      -- instance-seconds of `flavor`, spot
    other_flavors       TEXT NOT NULL,      -- JSON [[flavor, "spot"|"on_demand", seconds], ...] of other flavors (usually [])
    PRIMARY KEY (namespace, pool, hour)
) WITHOUT ROWID;

CREATE INDEX usage_hours_by_hour ON usage_hours (hour);

-- The samples of each rollup (the dashboard's chart and the replayed recommendations).
CREATE TABLE usage_samples (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    samples     TEXT NOT NULL,   -- JSON [[at_ms, load_rps|null, ready, billed, desired|null, forecast_capacity|null], ...]
    PRIMARY KEY (namespace, pool, hour)
) WITHOUT ROWID;

-- Answers of the advisor (one JSON document of flexus_api::Advice each), newest kept.
CREATE TABLE advice (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (namespace, pool, id)
);

CREATE INDEX advice_by_pool ON advice (namespace, pool, created_ms);
