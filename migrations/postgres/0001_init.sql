-- nexus-crm storage, PostgreSQL dialect. Keep in step with migrations/sqlite/0001_init.sql: same tables,
-- columns, keys and indexes; only the types differ (TIMESTAMPTZ, DATE, JSONB, BOOLEAN, BIGINT,
-- DOUBLE PRECISION).
--
-- Every table carries tenant_id and every key starts with it, so a query that forgets the tenant
-- cannot use an index and shows up in review.

CREATE TABLE crm_definitions (
    tenant_id  TEXT        NOT NULL,
    id         TEXT        NOT NULL,
    version    BIGINT      NOT NULL CHECK (version >= 1),
    name       TEXT        NOT NULL,
    source     TEXT        NOT NULL,
    checksum   TEXT        NOT NULL,
    active     BOOLEAN     NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id, version)
);

CREATE TABLE crm_instances (
    tenant_id          TEXT        NOT NULL,
    id                 TEXT        NOT NULL,
    definition_id      TEXT        NOT NULL,
    definition_version BIGINT      NOT NULL,
    entity             TEXT        NOT NULL,
    subject_type       TEXT,
    subject_id         TEXT,
    state              TEXT        NOT NULL,
    status             TEXT        NOT NULL CHECK (status IN ('active', 'completed')),
    data               JSONB       NOT NULL,
    assignee           TEXT,
    version            BIGINT      NOT NULL CHECK (version >= 1),
    stage_entered_at   TIMESTAMPTZ NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    ended_at           TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, definition_id, definition_version)
        REFERENCES crm_definitions (tenant_id, id, version)
);
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
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT        NOT NULL,
    instance_id TEXT        NOT NULL,
    seq         BIGINT      NOT NULL CHECK (seq >= 1),
    event       TEXT        NOT NULL,
    before      JSONB,
    after       JSONB,
    actor_id    TEXT,
    payload     JSONB,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, instance_id, seq),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
-- SR-005: the audit trail is immutable, whatever code or person holds the connection.
CREATE FUNCTION crm_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'crm_history is append-only';
END;
$$;
CREATE TRIGGER crm_history_no_update BEFORE UPDATE OR DELETE ON crm_history
    FOR EACH ROW EXECUTE FUNCTION crm_history_append_only();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER crm_history_no_truncate BEFORE TRUNCATE ON crm_history
    FOR EACH STATEMENT EXECUTE FUNCTION crm_history_append_only();

CREATE TABLE crm_tokens (
    tenant_id   TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    instance_id TEXT        NOT NULL,
    gateway     TEXT        NOT NULL,
    branch      TEXT        NOT NULL,
    stage        TEXT,
    status      TEXT        NOT NULL CHECK (status IN ('active', 'completed', 'cancelled')),
    created_at  TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_tokens_instance ON crm_tokens (tenant_id, instance_id, status);

-- One row per approval round: a transition re-requested after a rejection opens round n + 1, so
-- votes of an earlier round never count again.
CREATE TABLE crm_approval_requests (
    tenant_id    TEXT        NOT NULL,
    instance_id  TEXT        NOT NULL,
    transition   TEXT        NOT NULL,
    round        BIGINT      NOT NULL CHECK (round >= 1),
    status       TEXT        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    assignees    JSONB       NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    resolved_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, instance_id, transition, round),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE UNIQUE INDEX crm_approval_requests_one_pending ON crm_approval_requests (tenant_id, instance_id, transition)
    WHERE status = 'pending';
CREATE INDEX crm_approval_requests_pending ON crm_approval_requests (tenant_id, status);

CREATE TABLE crm_approvals (
    tenant_id   TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    instance_id TEXT        NOT NULL,
    transition  TEXT        NOT NULL,
    round       BIGINT      NOT NULL,
    approver    TEXT        NOT NULL,
    decision    TEXT        NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, instance_id, transition, round, approver),
    FOREIGN KEY (tenant_id, instance_id, transition, round)
        REFERENCES crm_approval_requests (tenant_id, instance_id, transition, round)
);

CREATE TABLE crm_assignments (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT        NOT NULL,
    instance_id TEXT        NOT NULL,
    user_id     TEXT        NOT NULL,
    assigned_by TEXT,
    assigned_at TIMESTAMPTZ NOT NULL,
    active      BOOLEAN     NOT NULL,
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_assignments_instance ON crm_assignments (tenant_id, instance_id);
CREATE UNIQUE INDEX crm_assignments_one_active ON crm_assignments (tenant_id, instance_id) WHERE active;

CREATE TABLE crm_delegations (
    tenant_id  TEXT        NOT NULL,
    id         TEXT        NOT NULL,
    delegator  TEXT        NOT NULL,
    delegatee  TEXT        NOT NULL CHECK (delegatee <> delegator),
    start_date DATE,
    end_date   DATE,
    entity     TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX crm_delegations_delegatee ON crm_delegations (tenant_id, delegatee);

CREATE TABLE crm_outbox (
    tenant_id       TEXT        NOT NULL,
    id              TEXT        NOT NULL,
    instance_id     TEXT,
    kind            TEXT        NOT NULL CHECK (kind IN ('event', 'action', 'compensation')),
    name            TEXT        NOT NULL,
    payload         JSONB       NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts        BIGINT      NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_by       TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    processed_at    TIMESTAMPTZ,
    last_error      TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_outbox_due ON crm_outbox (status, next_attempt_at);
CREATE INDEX crm_outbox_instance ON crm_outbox (tenant_id, instance_id);

CREATE TABLE crm_timers (
    tenant_id    TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    instance_id  TEXT        NOT NULL,
    type         TEXT        NOT NULL,
    trigger_at   TIMESTAMPTZ NOT NULL,
    payload      JSONB       NOT NULL,
    processed_at TIMESTAMPTZ,
    cancelled    BOOLEAN     NOT NULL DEFAULT false,
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
-- Workers poll only what is still to fire (PR-003, SCL-002); processed timers drop out of the index.
CREATE INDEX crm_timers_due ON crm_timers (trigger_at) WHERE processed_at IS NULL;
CREATE INDEX crm_timers_instance ON crm_timers (tenant_id, instance_id) WHERE processed_at IS NULL;

CREATE TABLE crm_sla (
    tenant_id        TEXT        NOT NULL,
    id               TEXT        NOT NULL,
    instance_id      TEXT        NOT NULL,
    scope            TEXT        NOT NULL,
    duration_minutes BIGINT      NOT NULL CHECK (duration_minutes >= 0),
    started_at       TIMESTAMPTZ NOT NULL,
    at_risk_at       TIMESTAMPTZ,
    breach_at        TIMESTAMPTZ NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('on_track', 'at_risk', 'breached', 'met')),
    stopped_at       TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_sla_instance ON crm_sla (tenant_id, instance_id);
CREATE INDEX crm_sla_status ON crm_sla (tenant_id, status, breach_at);

CREATE TABLE crm_escalations (
    tenant_id    TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    instance_id  TEXT        NOT NULL,
    level        BIGINT      NOT NULL CHECK (level >= 1),
    from_user_id TEXT,
    to_user_id   TEXT,
    reason       TEXT        NOT NULL,
    escalated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_escalations_instance ON crm_escalations (tenant_id, instance_id);

CREATE TABLE crm_contacts (
    tenant_id   TEXT             NOT NULL,
    id          TEXT             NOT NULL,
    instance_id TEXT,
    name        TEXT             NOT NULL,
    email       TEXT,
    phone       TEXT,
    company     TEXT,
    status      TEXT             NOT NULL,
    score       DOUBLE PRECISION,
    data        JSONB            NOT NULL,
    created_at  TIMESTAMPTZ      NOT NULL,
    updated_at  TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_contacts_status ON crm_contacts (tenant_id, status, id);

CREATE TABLE crm_opportunities (
    tenant_id   TEXT             NOT NULL,
    id          TEXT             NOT NULL,
    contact_id  TEXT             NOT NULL,
    instance_id TEXT,
    stage       TEXT             NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    currency    TEXT             NOT NULL,
    close_date  DATE,
    probability DOUBLE PRECISION NOT NULL,
    data        JSONB            NOT NULL,
    created_at  TIMESTAMPTZ      NOT NULL,
    updated_at  TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_opportunities_stage ON crm_opportunities (tenant_id, stage, id);
CREATE INDEX crm_opportunities_contact ON crm_opportunities (tenant_id, contact_id);

CREATE TABLE crm_campaigns (
    tenant_id   TEXT        NOT NULL,
    id          TEXT        NOT NULL,
    instance_id TEXT,
    name        TEXT        NOT NULL,
    type        TEXT        NOT NULL,
    start_date  DATE,
    end_date    DATE,
    metrics     JSONB       NOT NULL,
    status      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES crm_instances (tenant_id, id)
);
CREATE INDEX crm_campaigns_status ON crm_campaigns (tenant_id, status, id);
