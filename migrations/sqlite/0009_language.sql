-- Assignment the engine performs (issue #14), SQLite dialect.
-- Keep in step with migrations/postgres/0009_language.sql.
--
-- crm_assignment_turns: the round-robin rotation of one candidate pool (`definition/entity`, or
-- `definition/entity/action` for an `assign` action). `turns` counts the turns taken; the next
-- candidate is `turns mod (number of candidates)`. Shared by every engine on the database, so
-- several processes take turns in one rotation.
CREATE TABLE crm_assignment_turns (
    tenant_id  TEXT    NOT NULL,
    pool       TEXT    NOT NULL,
    turns      INTEGER NOT NULL CHECK (turns >= 0),
    PRIMARY KEY (tenant_id, pool)
) STRICT;
