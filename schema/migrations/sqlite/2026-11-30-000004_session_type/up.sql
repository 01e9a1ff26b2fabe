-- The sim's session type (Practice, Qualify, Race, ...) a driver node named; NULL when unknown.
ALTER TABLE racing_sessions ADD COLUMN session_type TEXT;
