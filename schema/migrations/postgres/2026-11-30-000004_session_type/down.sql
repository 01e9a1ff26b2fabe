ALTER TABLE racing_sessions DROP COLUMN session_type;
