-- The pools that have usage rollups, one row each (written with every rollup, deleted
-- by pruning with a pool's last rollup). A cost report walks this list and reads each
-- pool's window as a range of usage_hours' primary key (namespace, pool, hour): rows
-- outside the window are never read, and the rows come grouped by pool with no sort
-- (version 3 summed the window through the hour index: one key lookup per row, then a
-- temporary B-tree to group them).
CREATE TABLE usage_pools (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    PRIMARY KEY (namespace, pool)
) WITHOUT ROWID;

INSERT INTO usage_pools (namespace, pool) SELECT DISTINCT namespace, pool FROM usage_hours;
