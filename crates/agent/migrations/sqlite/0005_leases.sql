-- flexus-agent store, version 5: pool leases with fencing tokens, and the agents that
-- hold them (docs/design/leases.md). Expiry times are milliseconds on the database's
-- clock.
CREATE TABLE agents (
    holder      TEXT PRIMARY KEY,
    session     TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL
);

CREATE TABLE leases (
    namespace   TEXT NOT NULL,
    pool        TEXT NOT NULL,
    holder      TEXT NOT NULL,
    session     TEXT NOT NULL,
    token       INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    PRIMARY KEY (namespace, pool)
);
CREATE INDEX leases_holder ON leases(holder, session);

-- Retention deletes final operations by age; policy versions by age.
CREATE INDEX operations_created ON operations(created_at);
CREATE INDEX policy_versions_created ON policy_versions(created_at);
