//! The column lists and their row readers, declared together with [`columns!`] so a `SELECT`
//! list and the order it is decoded in cannot drift. Statements paste a list with
//! [`concat_sql!`]; the instance's are prefixed `i.`, the alias every statement gives
//! `crm_instances`.

use super::Decoded;
use crate::store::backend::{Backend, Reader};
use crate::store::{
    AttemptOutcome, AttemptRow, Campaign, Contact, DefinitionRow, DelegationRow, DisabledEndpoint,
    EscalationRow, HistoryRow, InstanceRow, Opportunity, OutboxRow, OutboxStatus, Stored,
    StoredInstanceStatus, StoredOutboxKind, TenantId, TimerRow,
};

columns! {
    /// `crm_definitions`.
    const DEFINITION_COLS;
    fn definition_row(r) -> DefinitionRow {
        id: "id" => r.text()?,
        version: "version" => r.count()?,
        name: "name" => r.text()?,
        source: "source" => r.text()?,
        checksum: "checksum" => r.text()?,
        active: "active" => r.boolean()?,
        created_at: "created_at" => r.time()?,
    }
}

columns! {
    /// `crm_instances`, aliased `i`.
    const INSTANCE_COLS;
    fn instance_row(r) -> InstanceRow {
        id: "i.id" => r.text()?,
        definition_id: "i.definition_id" => r.text()?,
        definition_version: "i.definition_version" => r.count()?,
        entity: "i.entity" => r.text()?,
        subject_type: "i.subject_type" => r.opt_text()?,
        subject_id: "i.subject_id" => r.opt_text()?,
        stage: "i.state" => r.text()?,
        status: "i.status" => r.parsed(StoredInstanceStatus::parse)?,
        data: "i.data" => r.json()?,
        assignee: "i.assignee" => r.opt_text()?,
        version: "i.version" => r.count()?,
        stage_entered_at: "i.stage_entered_at" => r.time()?,
        started_at: "i.started_at" => r.time()?,
        updated_at: "i.updated_at" => r.time()?,
        ended_at: "i.ended_at" => r.opt_time()?,
        number: "i.number" => r.opt_text()?,
    }
}

columns! {
    /// `crm_history`.
    const HISTORY_COLS;
    fn history_row(r) -> HistoryRow {
        instance_id: "instance_id" => r.text()?,
        seq: "seq" => r.count()?,
        event: "event" => r.text()?,
        before: "before" => r.opt_json()?,
        after: "after" => r.opt_json()?,
        actor_id: "actor_id" => r.opt_text()?,
        payload: "payload" => r.opt_json()?,
        created_at: "created_at" => r.time()?,
    }
}

columns! {
    /// `crm_timers`.
    const TIMER_COLS;
    fn timer_row(r) -> TimerRow {
        tenant: "tenant_id" => TenantId(r.text()?),
        id: "id" => r.text()?,
        instance_id: "instance_id" => r.text()?,
        kind: "type" => r.text()?,
        trigger_at: "trigger_at" => r.time()?,
        payload: "payload" => r.json()?,
        processed_at: "processed_at" => r.opt_time()?,
        cancelled: "cancelled" => r.boolean()?,
        locked_by: "locked_by" => r.opt_text()?,
        locked_until: "locked_until" => r.opt_time()?,
    }
}

columns! {
    /// `crm_escalations`.
    const ESCALATION_COLS;
    fn escalation_row(r) -> EscalationRow {
        id: "id" => r.text()?,
        instance_id: "instance_id" => r.text()?,
        level: "level" => r.count()?,
        from_user_id: "from_user_id" => r.opt_text()?,
        to_user_id: "to_user_id" => r.opt_text()?,
        reason: "reason" => r.text()?,
        escalated_at: "escalated_at" => r.time()?,
    }
}

columns! {
    /// `crm_delegations`.
    const DELEGATION_COLS;
    fn delegation_row(r) -> DelegationRow {
        id: "id" => r.text()?,
        delegator: "delegator" => r.text()?,
        delegatee: "delegatee" => r.text()?,
        start_date: "start_date" => r.opt_date()?,
        end_date: "end_date" => r.opt_date()?,
        entity: "entity" => r.opt_text()?,
        created_at: "created_at" => r.time()?,
    }
}

columns! {
    /// `crm_outbox`.
    const OUTBOX_COLS;
    fn outbox_row(r) -> OutboxRow {
        tenant: "tenant_id" => TenantId(r.text()?),
        id: "id" => r.text()?,
        instance_id: "instance_id" => r.opt_text()?,
        kind: "kind" => r.parsed(StoredOutboxKind::parse)?,
        name: "name" => r.text()?,
        payload: "payload" => r.json()?,
        status: "status" => r.parsed(OutboxStatus::parse)?,
        attempts: "attempts" => r.count()?,
        next_attempt_at: "next_attempt_at" => r.time()?,
        locked_by: "locked_by" => r.opt_text()?,
        created_at: "created_at" => r.time()?,
        processed_at: "processed_at" => r.opt_time()?,
        last_error: "last_error" => r.opt_text()?,
        claim: "claim_token" => r.opt_text()?,
        discarded_at: "discarded_at" => r.opt_time()?,
    }
}

columns! {
    /// `crm_outbox_attempts`.
    const ATTEMPT_COLS;
    fn attempt_row(r) -> AttemptRow {
        id: "id" => r.text()?,
        outbox_id: "outbox_id" => r.text()?,
        attempt: "attempt" => r.count()?,
        worker: "worker" => r.text()?,
        started_at: "started_at" => r.time()?,
        latency_us: "latency_us" => r.count()?,
        outcome: "outcome" => r.parsed(AttemptOutcome::parse)?,
        http_status: "http_status" => r.opt_int()?.and_then(|s| u16::try_from(s).ok()),
        error: "error" => r.opt_text()?,
    }
}

columns! {
    /// `crm_webhook_endpoints`.
    const ENDPOINT_COLS;
    fn endpoint_row(r) -> DisabledEndpoint {
        url: "url" => r.text()?,
        disabled_at: "disabled_at" => r.time()?,
        reason: "reason" => r.text()?,
        outbox_id: "outbox_id" => r.opt_text()?,
    }
}

columns! {
    /// `crm_contacts`.
    const CONTACT_COLS;
    fn contact_row(r) -> Stored<Contact> {
        id: "id" => r.text()?,
        instance_id: "instance_id" => r.opt_text()?,
        name: "name" => r.text()?,
        email: "email" => r.opt_text()?,
        phone: "phone" => r.opt_text()?,
        company: "company" => r.opt_text()?,
        status: "status" => r.text()?,
        score: "score" => r.opt_real()?,
        data: "data" => r.json()?,
    }
}

columns! {
    /// `crm_opportunities`.
    const OPPORTUNITY_COLS;
    fn opportunity_row(r) -> Stored<Opportunity> {
        id: "id" => r.text()?,
        contact_id: "contact_id" => r.text()?,
        instance_id: "instance_id" => r.opt_text()?,
        stage: "stage" => r.text()?,
        value: "value" => r.real()?,
        currency: "currency" => r.text()?,
        close_date: "close_date" => r.opt_date()?,
        probability: "probability" => r.real()?,
        data: "data" => r.json()?,
    }
}

columns! {
    /// `crm_campaigns`.
    const CAMPAIGN_COLS;
    fn campaign_row(r) -> Stored<Campaign> {
        id: "id" => r.text()?,
        instance_id: "instance_id" => r.opt_text()?,
        name: "name" => r.text()?,
        kind: "type" => r.text()?,
        start_date: "start_date" => r.opt_date()?,
        end_date: "end_date" => r.opt_date()?,
        metrics: "metrics" => r.json()?,
        status: "status" => r.text()?,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is the fields' columns joined by `, `, as the statements always wrote them; a
    /// `Stored<T>` list ends with the two times.
    #[test]
    fn lists_are_joined_columns() {
        assert_eq!(DEFINITION_COLS, "id, version, name, source, checksum, active, created_at");
        assert_eq!(
            CAMPAIGN_COLS,
            "id, instance_id, name, type, start_date, end_date, metrics, status, created_at, updated_at"
        );
    }
}
