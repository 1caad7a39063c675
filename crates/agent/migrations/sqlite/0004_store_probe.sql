-- flexus-agent store, version 4: one row the agent rewrites to find out whether the
-- store can commit again after a failed write (full disk, I/O error).
CREATE TABLE store_probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  TEXT NOT NULL
);
