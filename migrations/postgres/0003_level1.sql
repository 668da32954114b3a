-- Level 1 (`HasCrm`) CRMs promoted to the database store (seed US-010, BR-006), PostgreSQL dialect.
-- Keep in step with migrations/sqlite/0003_level1.sql: same tables, columns, keys and indexes.
--
-- A host's CRM in the store is a row of crm_level1_hosts, keyed by (tenant_id, host_id): the host
-- is part of every key below, so two hosts of one tenant may both have a contact `crm-7`.

CREATE TABLE crm_level1_hosts (
    tenant_id     TEXT        NOT NULL,
    host_id       TEXT        NOT NULL,
    -- The last history sequence number and contact position handed out; bumping them is also what
    -- serialises concurrent commits to one host (the row lock).
    last_seq      BIGINT      NOT NULL CHECK (last_seq >= 0),
    last_position BIGINT      NOT NULL CHECK (last_position >= 0),
    origin        TEXT        NOT NULL CHECK (origin IN ('new', 'document')),
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, host_id)
);

-- Level 1 contacts are crm_contacts rows, so Level 2 sees them too. `id` stays the tenant-unique
-- row id (opportunities reference it); a Level 1 row also names its host and its id within the
-- host, and its place in the host's contact order. Level 2 rows leave the three NULL.
ALTER TABLE crm_contacts ADD COLUMN host_id TEXT;
ALTER TABLE crm_contacts ADD COLUMN contact_id TEXT;
ALTER TABLE crm_contacts ADD COLUMN position BIGINT;
CREATE UNIQUE INDEX crm_contacts_level1 ON crm_contacts (tenant_id, host_id, contact_id)
    WHERE host_id IS NOT NULL;
CREATE INDEX crm_contacts_level1_order ON crm_contacts (tenant_id, host_id, position)
    WHERE host_id IS NOT NULL;

-- A Level 1 CRM's history. Not crm_history: that table's entries belong to a workflow instance
-- (instance_id NOT NULL, a foreign key, per-instance numbering) and Level 1 has none; relaxing it
-- would weaken Level 2's audit trail and, on SQLite, mean rebuilding an append-only table.
CREATE TABLE crm_contact_history (
    tenant_id  TEXT        NOT NULL,
    host_id    TEXT        NOT NULL,
    seq        BIGINT      NOT NULL CHECK (seq >= 1),
    action     TEXT        NOT NULL CHECK (action IN ('add', 'edit', 'delete')),
    contact_id TEXT        NOT NULL,
    before     JSONB,
    after      JSONB,
    actor_id   TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, host_id, seq),
    FOREIGN KEY (tenant_id, host_id) REFERENCES crm_level1_hosts (tenant_id, host_id)
);
-- SR-005 for Level 1: history is immutable, whatever code or person holds the connection.
CREATE FUNCTION crm_contact_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'crm_contact_history is append-only';
END;
$$;
CREATE TRIGGER crm_contact_history_no_update BEFORE UPDATE OR DELETE ON crm_contact_history
    FOR EACH ROW EXECUTE FUNCTION crm_contact_history_append_only();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER crm_contact_history_no_truncate BEFORE TRUNCATE ON crm_contact_history
    FOR EACH STATEMENT EXECUTE FUNCTION crm_contact_history_append_only();
