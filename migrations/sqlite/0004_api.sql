-- The HTTP API (issue #10). Keep in step with migrations/postgres/0004_api.sql.
--
-- - crm_api_tokens: bearer tokens for `crm serve`, created by `crm token create`. Only the SHA-256 of a
--   token is stored (hex), so a leaked database does not leak usable tokens; `prefix` is the token's
--   first characters, enough for a person to tell tokens apart in `crm token list`. A token fixes the
--   tenant, the acting user and its roles and permissions (JSON arrays of text). Looked up by hash
--   across tenants: the hash is what a request carries, the tenant is what the token says.
-- - crm_idempotency: one row per Idempotency-Key and tenant, written in the same transaction as the
--   effect it guards (so a retried request never applies twice). `fingerprint` is the SHA-256 of the
--   method, path, caller and body; `instance_id` the instance the effect wrote (the response can be
--   rebuilt from it if the process died before `response` was stored).
-- - crm_instances_updated: the instance listing walks (updated_at, id) in keyset pages.

CREATE TABLE crm_api_tokens (
    id          TEXT NOT NULL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    roles       TEXT NOT NULL CHECK (json_valid(roles)),
    permissions TEXT NOT NULL CHECK (json_valid(permissions)),
    label       TEXT,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) STRICT;
CREATE INDEX crm_api_tokens_tenant ON crm_api_tokens (tenant_id, created_at, id);

CREATE TABLE crm_idempotency (
    tenant_id   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    instance_id TEXT,
    response    TEXT    CHECK (response IS NULL OR json_valid(response)),
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, key)
) STRICT;
CREATE INDEX crm_idempotency_created ON crm_idempotency (created_at);

CREATE INDEX crm_instances_updated ON crm_instances (tenant_id, updated_at, id);
