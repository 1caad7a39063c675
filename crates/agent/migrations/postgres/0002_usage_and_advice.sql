-- flexus-agent store on PostgreSQL, version 2 (operator: cost report, advisor,
-- dashboard): the tables of migrations/sqlite/0003_usage_and_advice.sql, in PostgreSQL
-- types. (SQLite keeps its numbering: a SQLite file written before the leases already
-- has these tables as its version 3 and must open unchanged.)

-- Hourly usage rollups of one pool (the usage recorder, crates/agent/src/cost/usage.rs);
-- bounded by cost.retention, kept when the pool is deleted (it is what the pool cost).
CREATE TABLE usage_hours (
    namespace           TEXT COLLATE "C" NOT NULL,
    pool                TEXT COLLATE "C" NOT NULL,
    hour                BIGINT NOT NULL,             -- start of the hour, s since the epoch
    flavor              TEXT NOT NULL,
    billed_seconds      DOUBLE PRECISION NOT NULL,
    ready_seconds       DOUBLE PRECISION NOT NULL,
    idle_seconds        DOUBLE PRECISION NOT NULL,
    load_seconds        DOUBLE PRECISION NOT NULL,
    requests            DOUBLE PRECISION NOT NULL,
    violation_seconds   DOUBLE PRECISION NOT NULL,
    actions             BIGINT NOT NULL,
    covered_seconds     DOUBLE PRECISION NOT NULL,
    on_demand_seconds   DOUBLE PRECISION NOT NULL,
    spot_seconds        DOUBLE PRECISION NOT NULL,
    other_flavors       TEXT NOT NULL,               -- JSON [[flavor, purchase, seconds], ...]
    PRIMARY KEY (namespace, pool, hour)
);
CREATE INDEX usage_hours_by_hour ON usage_hours (hour);

CREATE TABLE usage_samples (
    namespace   TEXT COLLATE "C" NOT NULL,
    pool        TEXT COLLATE "C" NOT NULL,
    hour        BIGINT NOT NULL,
    samples     TEXT NOT NULL,
    PRIMARY KEY (namespace, pool, hour)
);

-- Answers of the advisor, newest kept; deleted with their pool.
CREATE TABLE advice (
    namespace   TEXT COLLATE "C" NOT NULL,
    pool        TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    created_ms  BIGINT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (namespace, pool, id)
);
CREATE INDEX advice_by_pool ON advice (namespace, pool, created_ms);
