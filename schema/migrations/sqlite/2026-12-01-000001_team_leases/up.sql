-- Cluster mode: which runtime node owns each team's actors. A lease with an expiry, renewed by its
-- owner; `token` is the fencing token, which only ever increases (the row is never deleted: a
-- release only expires it), and every team-scoped write checks it inside its transaction.
CREATE TABLE team_leases (
    team_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
