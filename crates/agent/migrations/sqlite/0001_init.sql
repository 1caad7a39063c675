-- flexus-agent store, version 1.
CREATE TABLE namespaces (
    name        TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);

CREATE TABLE pools (
    namespace   TEXT NOT NULL REFERENCES namespaces(name),
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    deleting    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE policies (
    namespace   TEXT NOT NULL REFERENCES namespaces(name),
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    pool        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE UNIQUE INDEX policies_pool ON policies(namespace, pool);

CREATE TABLE policy_versions (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, name, version)
);

CREATE TABLE operations (
    id          TEXT PRIMARY KEY,
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    count       INTEGER NOT NULL,
    purchase    TEXT,
    job_id      TEXT,
    server_ids  TEXT NOT NULL DEFAULT '[]',
    request     TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX operations_pool ON operations(namespace, pool, created_at);
CREATE INDEX operations_open ON operations(state) WHERE state IN ('pending', 'submitted');

CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX decisions_pool ON decisions(namespace, pool, id);

CREATE TABLE pool_state (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    history     TEXT NOT NULL,
    status      TEXT NOT NULL,
    PRIMARY KEY (namespace, pool)
);
