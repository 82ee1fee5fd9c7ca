-- A call row is updated four to six times (one per status callback, AMD, bridge) and
-- most of those updates touch no indexed column: leaving room on each page lets
-- Postgres make them HOT updates (no new index entries, no index bloat).
ALTER TABLE calls SET (fillfactor = 70);
