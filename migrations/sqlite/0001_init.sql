-- nexus-crm storage, SQLite dialect. Keep in step with migrations/postgres/0001_init.sql: same tables,
-- columns, keys and indexes; only the types differ.
--
-- Conventions: every table carries tenant_id and every key starts with it, so a query that forgets the
-- tenant cannot use an index and shows up in review. Timestamps are fixed-width RFC 3339 text in UTC
-- with microseconds ('2025-01-31T09:30:00.000000Z'), so text order is time order; dates are 'YYYY-MM-DD';
-- JSON is text checked by json_valid; booleans are 0/1. Tables are STRICT so a wrongly typed value is
-- refused instead of silently stored (REL-004).

CREATE TABLE crm_definitions (
    tenant_id  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    name       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    active     INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id, version)
) STRICT;

CREATE TABLE crm_instances (
    tenant_id          TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    definition_id      TEXT    NOT NULL,
    definition_version INTEGER NOT NULL,
    entity             TEXT    NOT NULL,
    subject_type       TEXT,
    subject_id         TEXT,
    state              TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('active', 'completed')),
    data               TEXT    NOT NULL CHECK (json_valid(data)),
    assignee           TEXT,
    version            INTEGER NOT NULL CHECK (version >= 1),
    stage_entered_at   TEXT    NOT NULL,
    started_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    ended_at           TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, definition_id, definition_version)
        REFERENCES crm_definitions (tenant_id, id, version)
) STRICT;
CREATE INDEX crm_instances_status ON crm_instances (tenant_id, status, state);
CREATE INDEX crm_instances_definition ON crm_instances (tenant_id, definition_id);
-- The dashboard walks one assignee's active instances in sort order: equality on the first three
-- columns, then a keyset range on (sort key, id), so a page costs O(log n + page).
CREATE INDEX crm_instances_assignee_updated ON crm_instances (tenant_id, assignee, status, updated_at, id);
CREATE INDEX crm_instances_assignee_started ON crm_instances (tenant_id, assignee, status, started_at, id);
-- BR-007: one instance of a definition per subject.
CREATE UNIQUE INDEX crm_instances_subject ON crm_instances (tenant_id, definition_id, subject_type, subject_id)
    WHERE subject_id IS NOT NULL;

CREATE TABLE crm_history (
    id          INTEGER PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    event       TEXT    NOT NULL,
    before      TEXT CHECK (before IS NULL OR json_valid(before)),
    after       TEXT CHECK (after IS NULL OR json_valid(after)),
    actor_id    TEXT,
    payload     TEXT CHECK (payload IS NULL OR json_valid(payload)),
    created_at  TEXT    NOT NULL,
    UNIQUE (tenant_id, instance_id, seq),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
-- SR-005: the audit trail is immutable, whatever code or person holds the connection.
CREATE TRIGGER crm_history_no_update BEFORE UPDATE ON crm_history
BEGIN
    SELECT RAISE(ABORT, 'crm_history is append-only');
END;
CREATE TRIGGER crm_history_no_delete BEFORE DELETE ON crm_history
BEGIN
    SELECT RAISE(ABORT, 'crm_history is append-only');
END;

CREATE TABLE crm_tokens (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    gateway      TEXT NOT NULL,
    branch       TEXT NOT NULL,
    stage        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('active', 'completed', 'cancelled')),
    created_at   TEXT NOT NULL,
    completed_at TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_tokens_instance ON crm_tokens (tenant_id, instance_id, status);

-- One row per approval round: a transition re-requested after a rejection opens round n + 1, so
-- votes of an earlier round never count again.
CREATE TABLE crm_approval_requests (
    tenant_id    TEXT    NOT NULL,
    instance_id  TEXT    NOT NULL,
    transition   TEXT    NOT NULL,
    round        INTEGER NOT NULL CHECK (round >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    assignees    TEXT    NOT NULL CHECK (json_valid(assignees)),
    requested_at TEXT    NOT NULL,
    resolved_at  TEXT,
    PRIMARY KEY (tenant_id, instance_id, transition, round),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX crm_approval_requests_one_pending ON crm_approval_requests (tenant_id, instance_id, transition)
    WHERE status = 'pending';
CREATE INDEX crm_approval_requests_pending ON crm_approval_requests (tenant_id, status);

CREATE TABLE crm_approvals (
    tenant_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    transition  TEXT    NOT NULL,
    round       INTEGER NOT NULL,
    approver    TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     TEXT,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, instance_id, transition, round, approver),
    FOREIGN KEY (tenant_id, instance_id, transition, round)
        REFERENCES crm_approval_requests (tenant_id, instance_id, transition, round)
) STRICT;

CREATE TABLE crm_assignments (
    id          INTEGER PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    assigned_by TEXT,
    assigned_at TEXT    NOT NULL,
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_assignments_instance ON crm_assignments (tenant_id, instance_id);
CREATE UNIQUE INDEX crm_assignments_one_active ON crm_assignments (tenant_id, instance_id) WHERE active = 1;

CREATE TABLE crm_delegations (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    delegator  TEXT NOT NULL,
    delegatee  TEXT NOT NULL CHECK (delegatee <> delegator),
    start_date TEXT,
    end_date   TEXT,
    entity     TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX crm_delegations_delegatee ON crm_delegations (tenant_id, delegatee);

CREATE TABLE crm_outbox (
    tenant_id       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    instance_id     TEXT,
    kind            TEXT    NOT NULL CHECK (kind IN ('event', 'action', 'compensation')),
    name            TEXT    NOT NULL,
    payload         TEXT    NOT NULL CHECK (json_valid(payload)),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    locked_by       TEXT,
    created_at      TEXT    NOT NULL,
    processed_at    TEXT,
    last_error      TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_outbox_due ON crm_outbox (status, next_attempt_at);
CREATE INDEX crm_outbox_instance ON crm_outbox (tenant_id, instance_id);

CREATE TABLE crm_timers (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    type         TEXT NOT NULL,
    trigger_at   TEXT NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    processed_at TEXT,
    cancelled    INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1)),
    locked_by    TEXT,
    locked_until TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
-- Workers poll only what is still to fire (PR-003, SCL-002); processed timers drop out of the index.
CREATE INDEX crm_timers_due ON crm_timers (trigger_at) WHERE processed_at IS NULL;
CREATE INDEX crm_timers_instance ON crm_timers (tenant_id, instance_id) WHERE processed_at IS NULL;

CREATE TABLE crm_sla (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    instance_id      TEXT    NOT NULL,
    scope            TEXT    NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes >= 0),
    started_at       TEXT    NOT NULL,
    at_risk_at       TEXT,
    breach_at        TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('on_track', 'at_risk', 'breached', 'met')),
    stopped_at       TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_sla_instance ON crm_sla (tenant_id, instance_id);
CREATE INDEX crm_sla_status ON crm_sla (tenant_id, status, breach_at);

CREATE TABLE crm_escalations (
    tenant_id    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    instance_id  TEXT    NOT NULL,
    level        INTEGER NOT NULL CHECK (level >= 1),
    from_user_id TEXT,
    to_user_id   TEXT,
    reason       TEXT    NOT NULL,
    escalated_at TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_escalations_instance ON crm_escalations (tenant_id, instance_id);

CREATE TABLE crm_contacts (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    instance_id TEXT,
    name        TEXT NOT NULL,
    email       TEXT,
    phone       TEXT,
    company     TEXT,
    status      TEXT NOT NULL,
    score       REAL,
    data        TEXT NOT NULL CHECK (json_valid(data)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_contacts_status ON crm_contacts (tenant_id, status, id);

CREATE TABLE crm_opportunities (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    instance_id TEXT,
    stage       TEXT NOT NULL,
    value       REAL NOT NULL,
    currency    TEXT NOT NULL,
    close_date  TEXT,
    probability REAL NOT NULL,
    data        TEXT NOT NULL CHECK (json_valid(data)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_opportunities_stage ON crm_opportunities (tenant_id, stage, id);
CREATE INDEX crm_opportunities_contact ON crm_opportunities (tenant_id, contact_id);

CREATE TABLE crm_campaigns (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    instance_id TEXT,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    start_date  TEXT,
    end_date    TEXT,
    metrics     TEXT NOT NULL CHECK (json_valid(metrics)),
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
) STRICT;
CREATE INDEX crm_campaigns_status ON crm_campaigns (tenant_id, status, id);
