-- Lap kind (flying, out-lap, in-lap) and the reasons a lap is invalid, found in its data.
ALTER TABLE laps ADD COLUMN kind TEXT NOT NULL DEFAULT 'flying';
ALTER TABLE laps ADD COLUMN invalid_reasons TEXT NOT NULL DEFAULT '[]';
