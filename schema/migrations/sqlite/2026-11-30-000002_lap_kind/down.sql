ALTER TABLE laps DROP COLUMN invalid_reasons;
ALTER TABLE laps DROP COLUMN kind;
