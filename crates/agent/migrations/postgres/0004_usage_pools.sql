-- The pools that have usage rollups (migrations/sqlite/0007_usage_pools.sql): a cost
-- report walks this list and reads each pool's window as a range of usage_hours'
-- primary key.
CREATE TABLE usage_pools (
    namespace   TEXT COLLATE "C" NOT NULL,
    pool        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (namespace, pool)
);

INSERT INTO usage_pools (namespace, pool) SELECT DISTINCT namespace, pool FROM usage_hours;
