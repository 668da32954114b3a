-- The engine's state, complete (issue #3). Keep in step with migrations/sqlite/0002_engine.sql.
--
-- - crm_instances.runs: the action runs whose outcome still matters (a branch waits for it, or a
--   compensation may need it), a JSON array written with the instance under its version check.
-- - crm_tokens.entered_at: when the token entered its current stage (created_at is when it started).
-- - crm_tokens.ended_at: when the gateway run the token belongs to ended (join or cancellation).
--   Every token of the running gateway, finished or not, has it NULL and is read back: a cancelled
--   branch must stay visible, or the join would proceed without it.
-- - crm_approval_requests.requested_by: who fired the transition awaiting approval (NULL: the system).

ALTER TABLE crm_instances ADD COLUMN runs JSONB NOT NULL DEFAULT '[]';

ALTER TABLE crm_tokens ADD COLUMN entered_at TIMESTAMPTZ;
ALTER TABLE crm_tokens ADD COLUMN ended_at TIMESTAMPTZ;
UPDATE crm_tokens SET entered_at = created_at;
-- Before this migration only active tokens were read back. A finished token is taken to belong to a
-- gateway that has ended unless an active token of the same fork (same instance and gateway, started
-- in the same commit) still runs.
UPDATE crm_tokens SET ended_at = COALESCE(completed_at, created_at)
WHERE status <> 'active' AND NOT EXISTS (
    SELECT 1 FROM crm_tokens a
    WHERE a.tenant_id = crm_tokens.tenant_id AND a.instance_id = crm_tokens.instance_id
      AND a.gateway = crm_tokens.gateway AND a.created_at = crm_tokens.created_at AND a.status = 'active'
);
DROP INDEX crm_tokens_instance;
CREATE INDEX crm_tokens_live ON crm_tokens (tenant_id, instance_id, created_at, id) WHERE ended_at IS NULL;

ALTER TABLE crm_approval_requests ADD COLUMN requested_by TEXT;
-- Pending rounds: the actor of the latest request of the transition, as the engine used to read it.
UPDATE crm_approval_requests SET requested_by = (
    SELECT h.actor_id FROM crm_history h
    WHERE h.tenant_id = crm_approval_requests.tenant_id AND h.instance_id = crm_approval_requests.instance_id
      AND h.event = 'approval_requested' AND h.payload->>'transition' = crm_approval_requests.transition
    ORDER BY h.seq DESC LIMIT 1
)
WHERE status = 'pending';
