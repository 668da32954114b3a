-- Definitions over their lifetime (issue #11), SQLite dialect.
-- Keep in step with migrations/postgres/0006_lifecycle.sql.
--
-- canonical_hash: SHA-256 of the definition's canonical JSON (keys sorted, no insignificant
-- whitespace), so a deploy that only reformats or reorders keys is recognised as unchanged. Rows
-- deployed before this migration have NULL here and are compared by canonicalising their source.
ALTER TABLE crm_definitions ADD COLUMN canonical_hash TEXT;

-- `active` now means "new instances start on this version": the latest version, unless the
-- definition was deactivated (then no version is active). At most one active version per
-- definition; older deploys already kept it so, the UPDATE only makes sure before the index.
UPDATE crm_definitions SET active = 0
WHERE active = 1 AND version < (
    SELECT MAX(m.version) FROM crm_definitions m
    WHERE m.tenant_id = crm_definitions.tenant_id AND m.id = crm_definitions.id
);
CREATE UNIQUE INDEX crm_definitions_active ON crm_definitions (tenant_id, id) WHERE active = 1;
