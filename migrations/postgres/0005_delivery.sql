-- Delivery to the outside world (issue #12). Keep in step with migrations/sqlite/0005_delivery.sql.
--
-- - crm_outbox.claim_token: a fresh token per claim; delivery results are recorded only under the
--   token of the claim that made them, so a worker whose lease ran out (and whose item another
--   worker claimed since) cannot mark it done or failed: its late completion is refused.
-- - crm_outbox.discarded_at: an operator discarded the item (`crm outbox discard`): status 'dead',
--   never delivered, kept for the record.
-- - crm_outbox_attempts: every delivery attempt (time, outcome, latency, HTTP status, error).
-- - crm_webhook_endpoints: endpoints disabled because they answered 410 Gone, visible to operators.
-- - crm_secrets: secrets referenced by name from definitions and configuration, never from the
--   definition itself.

ALTER TABLE crm_outbox ADD COLUMN claim_token TEXT;
ALTER TABLE crm_outbox ADD COLUMN discarded_at TIMESTAMPTZ;
CREATE INDEX crm_outbox_dead ON crm_outbox (tenant_id, status, id);

CREATE TABLE crm_outbox_attempts (
    tenant_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    outbox_id   TEXT    NOT NULL,
    attempt     BIGINT NOT NULL CHECK (attempt >= 1),
    worker      TEXT    NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    latency_us  BIGINT NOT NULL CHECK (latency_us >= 0),
    outcome     TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
    http_status BIGINT,
    error       TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, outbox_id) REFERENCES crm_outbox (tenant_id, id)
);
CREATE INDEX crm_outbox_attempts_item ON crm_outbox_attempts (tenant_id, outbox_id, started_at);

CREATE TABLE crm_webhook_endpoints (
    tenant_id   TEXT NOT NULL,
    url         TEXT NOT NULL,
    disabled_at TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL,
    outbox_id   TEXT,
    PRIMARY KEY (tenant_id, url)
);

CREATE TABLE crm_secrets (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
