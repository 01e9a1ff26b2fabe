-- PitBox schema, SQLite flavour. Keep in step with ../../postgres (same tables, same columns).
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE drivers (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id TEXT UNIQUE REFERENCES users(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    role TEXT NOT NULL,
    avatar_url TEXT,
    last_active TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX drivers_team ON drivers(team_id);

CREATE TABLE racing_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    driver_id TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    track TEXT NOT NULL,
    car TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX racing_sessions_driver ON racing_sessions(driver_id, started_at);

CREATE TABLE laps (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES racing_sessions(id) ON DELETE CASCADE,
    driver_id TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    lap_number INTEGER NOT NULL,
    lap_time DOUBLE NOT NULL,
    valid BOOLEAN NOT NULL,
    fuel_used DOUBLE,
    sector_times TEXT NOT NULL,
    sample_count INTEGER NOT NULL,
    telemetry BLOB NOT NULL,
    completed_at TIMESTAMP NOT NULL,
    UNIQUE (session_id, lap_number)
);
CREATE INDEX laps_driver ON laps(driver_id, completed_at);

CREATE TABLE telemetry_samples (
    id TEXT PRIMARY KEY NOT NULL,
    driver_id TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    session_id TEXT REFERENCES racing_sessions(id) ON DELETE SET NULL,
    stream_id TEXT,
    seq BIGINT,
    recorded_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (driver_id, stream_id, seq)
);
CREATE INDEX telemetry_samples_driver_time ON telemetry_samples(driver_id, recorded_at);

CREATE TABLE coaching_feedback (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    driver_id TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    lap_id TEXT REFERENCES laps(id) ON DELETE SET NULL,
    feedback TEXT NOT NULL,
    confidence DOUBLE NOT NULL,
    analysis TEXT NOT NULL,
    priority TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX coaching_feedback_driver ON coaching_feedback(driver_id, created_at);

CREATE TABLE team_messages (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    sender_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sender_name TEXT NOT NULL,
    content TEXT NOT NULL,
    priority TEXT NOT NULL,
    attachment TEXT,
    sent_at TIMESTAMP NOT NULL
);
CREATE INDEX team_messages_team ON team_messages(team_id, sent_at);

CREATE TABLE message_reads (
    message_id TEXT NOT NULL REFERENCES team_messages(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    read_at TIMESTAMP NOT NULL,
    PRIMARY KEY (message_id, user_id)
);

CREATE TABLE handoff_requests (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    requester_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    requester_name TEXT NOT NULL,
    from_driver_id TEXT REFERENCES drivers(id) ON DELETE SET NULL,
    target_driver_id TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    urgency TEXT NOT NULL,
    status TEXT NOT NULL,
    telemetry_snapshot TEXT,
    requested_at TIMESTAMP NOT NULL,
    responded_at TIMESTAMP,
    responder_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    completed_at TIMESTAMP
);
CREATE INDEX handoff_requests_team ON handoff_requests(team_id, requested_at);

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
