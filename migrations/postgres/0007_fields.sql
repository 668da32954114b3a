-- Human-readable instance numbers (issue #13), PostgreSQL dialect.
-- Keep in step with migrations/sqlite/0007_fields.sql.
--
-- crm_counters: one row per tenant, number pattern and period (the date text the pattern shows),
-- incremented by the transaction that creates an instance, so a rolled-back creation takes no
-- number and numbers have no gaps. Not a sequence: sequences are neither transactional nor per period.
CREATE TABLE crm_counters (
    tenant_id TEXT NOT NULL,
    pattern TEXT NOT NULL,
    period TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pattern, period)
);

ALTER TABLE crm_instances ADD COLUMN number TEXT;
CREATE UNIQUE INDEX crm_instances_number ON crm_instances (tenant_id, number) WHERE number IS NOT NULL;
