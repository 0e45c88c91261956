-- The image a mission runs in ('' = the nodes' default image): a node claims only missions
-- whose image it has.
ALTER TABLE missions ADD COLUMN image TEXT NOT NULL DEFAULT '';
