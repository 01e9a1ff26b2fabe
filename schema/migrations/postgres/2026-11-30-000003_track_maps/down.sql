DROP INDEX coaching_feedback_lap;
DROP TABLE track_turns;
DROP TABLE track_maps;
