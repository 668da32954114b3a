-- The HTTP API (issue #10). Keep in step with migrations/sqlite/0004_api.sql (the comments there
-- explain each table).

CREATE TABLE crm_api_tokens (
    id          TEXT        NOT NULL PRIMARY KEY,
    tenant_id   TEXT        NOT NULL,
    token_hash  TEXT        NOT NULL UNIQUE,
    prefix      TEXT        NOT NULL,
    user_id     TEXT        NOT NULL,
    roles       JSONB       NOT NULL,
    permissions JSONB       NOT NULL,
    label       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX crm_api_tokens_tenant ON crm_api_tokens (tenant_id, created_at, id);

CREATE TABLE crm_idempotency (
    tenant_id   TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,
    status      BIGINT      NOT NULL,
    instance_id TEXT,
    response    JSONB,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX crm_idempotency_created ON crm_idempotency (created_at);

CREATE INDEX crm_instances_updated ON crm_instances (tenant_id, updated_at, id);
