-- Interactions, attachments and report support (issue #13, items 2 and 4). Keep in step with
-- migrations/sqlite/0008_records.sql: same tables, columns, keys and indexes; only types differ.
--
-- - crm_interactions: notes, calls, meetings and e-mails logged on an instance or on a contact
--   (exactly one of the two), tenant-scoped like everything else.
-- - crm_attachments: files of an interaction. The bytes live in a directory (storage 'directory')
--   or in crm_attachment_chunks (storage 'database'); the row is written last, once every byte is
--   stored and hashed, so a half-written upload is never visible.
-- - crm_stage_visits: one row per stay of an instance's main stage, kept by triggers on
--   crm_history (the only writer of stage moves), so reports read visits, not JSON history.

CREATE TABLE crm_interactions (
    tenant_id        TEXT        NOT NULL,
    id               TEXT        NOT NULL,
    instance_id      TEXT,
    contact_id       TEXT,
    kind             TEXT        NOT NULL CHECK (kind IN ('note', 'call', 'meeting', 'email')),
    author           TEXT        NOT NULL,
    occurred_at      TIMESTAMPTZ NOT NULL,
    body             TEXT        NOT NULL,
    duration_seconds BIGINT      CHECK (duration_seconds IS NULL OR duration_seconds >= 0),
    outcome          TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((instance_id IS NULL) <> (contact_id IS NULL)),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id)
);
-- Listings and the timeline walk one subject's interactions newest first by (occurred_at, id).
CREATE INDEX crm_interactions_instance ON crm_interactions (tenant_id, instance_id, occurred_at, id)
    WHERE instance_id IS NOT NULL;
CREATE INDEX crm_interactions_contact ON crm_interactions (tenant_id, contact_id, occurred_at, id)
    WHERE contact_id IS NOT NULL;
-- The timeline pages history by (created_at, seq).
CREATE INDEX crm_history_timeline ON crm_history (tenant_id, instance_id, created_at, seq);

CREATE TABLE crm_attachments (
    tenant_id      TEXT        NOT NULL,
    id             TEXT        NOT NULL,
    interaction_id TEXT        NOT NULL,
    file_name      TEXT        NOT NULL,
    content_type   TEXT        NOT NULL,
    size_bytes     BIGINT      NOT NULL CHECK (size_bytes >= 0),
    sha256         TEXT        NOT NULL,
    storage        TEXT        NOT NULL CHECK (storage IN ('directory', 'database')),
    created_by     TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, interaction_id) REFERENCES crm_interactions (tenant_id, id)
);
CREATE INDEX crm_attachments_interaction ON crm_attachments (tenant_id, interaction_id, id);

-- Written chunk by chunk while an upload streams in, before its crm_attachments row exists.
CREATE TABLE crm_attachment_chunks (
    tenant_id     TEXT   NOT NULL,
    attachment_id TEXT   NOT NULL,
    seq           BIGINT NOT NULL CHECK (seq >= 0),
    bytes         BYTEA  NOT NULL,
    PRIMARY KEY (tenant_id, attachment_id, seq)
);

CREATE TABLE crm_stage_visits (
    tenant_id     TEXT        NOT NULL,
    instance_id   TEXT        NOT NULL,
    seq           BIGINT      NOT NULL,
    definition_id TEXT        NOT NULL,
    entity        TEXT        NOT NULL,
    stage         TEXT        NOT NULL,
    entered_at    TIMESTAMPTZ NOT NULL,
    assignee      TEXT,
    left_at       TIMESTAMPTZ,
    next_stage    TEXT,
    moved_by      TEXT,
    duration_us   BIGINT,
    PRIMARY KEY (tenant_id, instance_id, seq),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
-- Reports select visits by when they began or ended; the open visit of an instance is updated
-- on every move.
CREATE INDEX crm_stage_visits_entered ON crm_stage_visits (tenant_id, entered_at, stage);
CREATE INDEX crm_stage_visits_left ON crm_stage_visits (tenant_id, left_at, stage) WHERE left_at IS NOT NULL;
CREATE INDEX crm_stage_visits_open ON crm_stage_visits (tenant_id, instance_id) WHERE left_at IS NULL;
CREATE INDEX crm_sla_started ON crm_sla (tenant_id, started_at);

-- A stage move: a history entry whose `after` names a main stage (not a branch's) other than the
-- one in `before` (creation has no `before`); and an assignment, which sets the open visit's
-- assignee (who it was with when it moved on).
CREATE FUNCTION crm_stage_visits_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_stage TEXT := NEW.after ->> 'stage';
BEGIN
    IF NEW.event = 'assigned' THEN
        UPDATE crm_stage_visits SET assignee = NEW.after ->> 'assignee'
        WHERE tenant_id = NEW.tenant_id AND instance_id = NEW.instance_id AND left_at IS NULL;
    END IF;
    IF new_stage IS NOT NULL AND NEW.after ->> 'branch' IS NULL
        AND (NEW.before ->> 'stage') IS DISTINCT FROM new_stage THEN
        UPDATE crm_stage_visits v
        SET left_at = NEW.created_at,
            next_stage = new_stage,
            moved_by = v.assignee,
            duration_us = round(EXTRACT(EPOCH FROM (NEW.created_at - v.entered_at)) * 1000000)::BIGINT
        WHERE v.tenant_id = NEW.tenant_id AND v.instance_id = NEW.instance_id AND v.left_at IS NULL;
        INSERT INTO crm_stage_visits (tenant_id, instance_id, seq, definition_id, entity, stage, entered_at, assignee)
        SELECT NEW.tenant_id, NEW.instance_id, NEW.seq, i.definition_id, i.entity, new_stage, NEW.created_at,
               (SELECT v.assignee FROM crm_stage_visits v
                WHERE v.tenant_id = NEW.tenant_id AND v.instance_id = NEW.instance_id ORDER BY v.seq DESC LIMIT 1)
        FROM crm_instances i WHERE i.tenant_id = NEW.tenant_id AND i.id = NEW.instance_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER crm_stage_visits_track AFTER INSERT ON crm_history
    FOR EACH ROW EXECUTE FUNCTION crm_stage_visits_track();

-- Visits of the history written before this migration (assignees are not reconstructed).
INSERT INTO crm_stage_visits (tenant_id, instance_id, seq, definition_id, entity, stage, entered_at, left_at, next_stage, duration_us)
SELECT tenant_id, instance_id, seq, definition_id, entity, stage, entered_at, left_at, next_stage,
       CASE WHEN left_at IS NULL THEN NULL
            ELSE round(EXTRACT(EPOCH FROM (left_at - entered_at)) * 1000000)::BIGINT END
FROM (
    SELECT h.tenant_id, h.instance_id, h.seq, i.definition_id, i.entity, h.after ->> 'stage' AS stage,
           h.created_at AS entered_at,
           LEAD(h.created_at) OVER w AS left_at,
           LEAD(h.after ->> 'stage') OVER w AS next_stage
    FROM crm_history h JOIN crm_instances i ON i.tenant_id = h.tenant_id AND i.id = h.instance_id
    WHERE h.after ->> 'stage' IS NOT NULL
        AND h.after ->> 'branch' IS NULL
        AND (h.before ->> 'stage') IS DISTINCT FROM (h.after ->> 'stage')
    WINDOW w AS (PARTITION BY h.tenant_id, h.instance_id ORDER BY h.seq)
) moves;
