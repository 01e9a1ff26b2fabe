-- A track's corner map learnt by the coach (per team, track and car class), with the track's
-- outline from a clean lap's positions, so corner numbers stay stable and the map draws at once.
CREATE TABLE track_maps (
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    track TEXT NOT NULL,
    car_class TEXT NOT NULL,
    -- JSON of the coach's CornerMap.
    corner_map TEXT NOT NULL,
    -- JSON array of [lapFraction, x, y] (metres east/north of the first point); '[]' when the lap
    -- had no positions.
    outline TEXT NOT NULL,
    length_m DOUBLE NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, track, car_class)
);

-- A team's names for a track's corners (JSON array of {name, start, end} in lap fractions).
CREATE TABLE track_turns (
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    track TEXT NOT NULL,
    turns TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, track)
);

CREATE INDEX coaching_feedback_lap ON coaching_feedback(lap_id);
