//! The schemas of the OpenAPI document: what the handlers answer and take (they build their JSON
//! in `views` and parse it in each route module). Handlers name them in their `utoipa::path`
//! attributes; nothing constructs them.
#![allow(dead_code)]

use serde_json::Value as Json;
use utoipa::ToSchema;

/// An RFC 9457 problem document (`application/problem+json`), the body of every error.
#[derive(ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Conflict", "status": 409,
    "detail": "`make_contact` cannot be fired from stage `contacted`", "code": "crm::machine::wrong_stage",
    "help": "it leaves from: new"}))]
pub struct Problem {
    /// Always `about:blank`: `code` says what happened.
    #[schema(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for a person.
    detail: String,
    /// The stable code, e.g. `crm::machine::wrong_stage`, `crm::engine::unknown_instance`.
    code: String,
    /// How to fix it, when known.
    help: Option<String>,
    /// Invalid data: each problem.
    errors: Option<Vec<String>>,
    /// An invalid definition: its findings, as `crm check --format json` reports them.
    diagnostics: Option<Vec<Diagnostic>>,
}

/// One finding, as in `crm check --format json`.
#[derive(ToSchema)]
pub struct Diagnostic {
    /// The rule's code, e.g. `CRM0101`.
    code: String,
    /// `error` or `warning`.
    severity: String,
    /// What is wrong.
    message: String,
    /// `request body`.
    file: String,
    /// 1-based line.
    line: u32,
    /// 1-based column (characters).
    column: u32,
    /// Line of the span's end.
    end_line: u32,
    /// Column just past the span's end.
    end_column: u32,
    /// How to fix it.
    help: Option<String>,
}

/// `POST /v1/definitions/validate`.
#[derive(ToSchema)]
pub struct Validation {
    /// Whether the definition compiles without errors.
    valid: bool,
    /// Every finding.
    diagnostics: Vec<Diagnostic>,
}

/// `GET /v1/definitions/{id}/diagnostics`: what hot reload last made of the definition's file.
#[derive(ToSchema)]
pub struct ReloadDiagnostics {
    /// The definition's id.
    id: String,
    /// What the last reload did; `deployed` when the file was never reloaded.
    status: ReloadStatus,
    /// The version new instances start on; absent when none is deployed yet.
    live_version: Option<u64>,
    /// The file reloaded; absent when none was.
    file: Option<String>,
    /// When (RFC 3339); absent when no file was reloaded.
    reloaded_at: Option<String>,
    /// The findings in the file, as `crm check --format json` reports them.
    diagnostics: Vec<Diagnostic>,
}

/// What a reload did.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ReloadStatus {
    /// A new version is live.
    Deployed,
    /// Same content as the live version.
    Unchanged,
    /// Errors: the running version stays live.
    Invalid,
    /// Would strand live instances: the running version stays live.
    Strands,
}

/// A deployment.
#[derive(ToSchema)]
#[schema(example = json!({"id": "sales-pipeline", "version": 2, "created": true}))]
pub struct Deployed {
    /// The definition's id.
    id: String,
    /// The version holding the source.
    version: u64,
    /// False when the source equals the latest version.
    created: bool,
}

/// A deployed definition version.
#[derive(ToSchema)]
pub struct DefinitionSummary {
    /// Its id.
    id: String,
    /// Its label.
    name: String,
    /// The version.
    version: u64,
    /// Whether new instances may start on it.
    active: bool,
    /// SHA-256 of its canonical source.
    checksum: String,
    /// When it was deployed.
    created_at: String,
}

/// A list of definitions.
#[derive(ToSchema)]
pub struct Definitions {
    /// Newest first (versions) or by id (latest versions).
    items: Vec<DefinitionSummary>,
}

/// `POST /v1/instances`.
#[derive(ToSchema)]
#[schema(example = json!({"definition": "sales-pipeline", "entity": "lead", "data": {"lead_score": 80}}))]
pub struct CreateInstance {
    /// The definition id (its latest active version is used).
    definition: String,
    /// The entity, e.g. `lead`.
    entity: String,
    /// The data, validated against the definition's `dataSchema` (default `{}`).
    #[schema(value_type = Object, required = false)]
    data: Option<Json>,
}

/// `POST /v1/instances/{id}/fire`.
#[derive(ToSchema)]
#[schema(example = json!({"transition": "make_contact"}))]
pub struct Fire {
    /// A transition or gateway name.
    transition: String,
}

/// `POST /v1/instances/{id}/approve` and `/reject`.
#[derive(ToSchema)]
pub struct Respond {
    /// The transition awaiting approval.
    transition: String,
}

/// `POST /v1/instances/{id}/complete-branch`.
#[derive(ToSchema)]
pub struct CompleteBranch {
    /// The running gateway.
    gateway: String,
    /// The branch to mark done.
    branch: String,
}

/// `POST /v1/instances/{id}/assign`.
#[derive(ToSchema)]
pub struct Assign {
    /// The user (their active delegations are followed).
    assignee: String,
}

/// A branch of the running gateway.
#[derive(ToSchema)]
pub struct Token {
    /// The gateway.
    gateway: String,
    /// The branch.
    branch: String,
    /// The branch's stage, if it has stages.
    stage: Option<String>,
    /// `active`, `completed` or `cancelled`.
    status: String,
}

/// A vote on a pending approval.
#[derive(ToSchema)]
pub struct Vote {
    /// Who voted.
    approver: String,
    /// `approve` or `reject`.
    vote: String,
    /// When.
    at: String,
}

/// A transition waiting for approval.
#[derive(ToSchema)]
pub struct PendingApproval {
    /// The transition.
    transition: String,
    /// Who fired it.
    requested_by: String,
    /// The votes so far.
    responses: Vec<Vote>,
}

/// An instance; its `ETag` is `"<version>"`.
#[derive(ToSchema)]
#[schema(example = json!({"id": "01927c1e-…", "definition": "sales-pipeline", "definition_version": 1,
    "entity": "lead", "stage": "new", "status": "active", "data": {"lead_score": 80}, "assignee": null,
    "version": 1, "tokens": [], "pending_approval": null}))]
pub struct Instance {
    /// Its id.
    id: String,
    /// The definition it runs.
    definition: String,
    /// The version it is pinned to.
    definition_version: u64,
    /// Its entity.
    entity: String,
    /// Its stage.
    stage: String,
    /// `active` or `completed`.
    status: String,
    /// Its data.
    #[schema(value_type = Object)]
    data: Json,
    /// Who it is assigned to.
    assignee: Option<String>,
    /// The optimistic-lock version (send it back in `If-Match`).
    version: u64,
    /// The running gateway's branches.
    tokens: Vec<Token>,
    /// The approval a transition waits for.
    pending_approval: Option<PendingApproval>,
    /// Its human-readable number; absent when its entity has no `number` pattern.
    #[schema(nullable = false)]
    number: Option<String>,
}

/// An instance in a listing.
#[derive(ToSchema)]
pub struct InstanceRow {
    /// Its id.
    id: String,
    /// The definition.
    definition: String,
    /// The pinned version.
    definition_version: u64,
    /// Its entity.
    entity: String,
    /// Its stage.
    stage: String,
    /// `active` or `completed`.
    status: String,
    /// Its data.
    #[schema(value_type = Object)]
    data: Json,
    /// Who it is assigned to.
    assignee: Option<String>,
    /// Its version.
    version: u64,
    /// Created.
    started_at: String,
    /// Last changed.
    updated_at: String,
    /// Completed.
    ended_at: Option<String>,
    /// Its human-readable number; absent when its entity has no `number` pattern.
    #[schema(nullable = false)]
    number: Option<String>,
}

/// A page of instances.
#[derive(ToSchema)]
pub struct InstancePage {
    /// Oldest change first.
    items: Vec<InstanceRow>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// An audit entry.
#[derive(ToSchema)]
pub struct HistoryEntry {
    /// 1, 2, … per instance.
    seq: u64,
    /// What happened.
    event: String,
    /// State before.
    #[schema(value_type = Option<Object>)]
    before: Option<Json>,
    /// State after.
    #[schema(value_type = Option<Object>)]
    after: Option<Json>,
    /// Who; absent for the system.
    actor: Option<String>,
    /// Details.
    #[schema(value_type = Option<Object>)]
    payload: Option<Json>,
    /// When.
    at: String,
}

/// A page of history.
#[derive(ToSchema)]
pub struct HistoryPage {
    /// Oldest first.
    items: Vec<HistoryEntry>,
    /// The next page's cursor.
    next_cursor: Option<String>,
}

/// Why an item is on a dashboard.
#[derive(ToSchema)]
pub struct Reason {
    /// `assigned`, `delegated` or `approval`.
    kind: String,
    /// Delegated: the original assignee.
    from: Option<String>,
    /// Approval: the transition.
    transition: Option<String>,
}

/// A dashboard item: an instance and why it is there.
#[derive(ToSchema)]
pub struct DashboardItem {
    /// The instance.
    #[schema(inline)]
    instance: InstanceRow,
    /// Why.
    reason: Reason,
}

/// A page of a dashboard.
#[derive(ToSchema)]
pub struct Dashboard {
    /// Whose.
    user: String,
    /// Instance fields plus `reason`.
    items: Vec<Json>,
    /// The next page's cursor.
    next_cursor: Option<String>,
}

/// `POST /v1/delegations`.
#[derive(ToSchema)]
pub struct NewDelegation {
    /// Who delegates (default: the caller; anyone else needs `delegations:manage`).
    delegator: Option<String>,
    /// To whom.
    delegatee: String,
    /// First day, `YYYY-MM-DD`.
    start: Option<String>,
    /// Last day.
    end: Option<String>,
    /// Only this entity.
    entity: Option<String>,
}

/// A delegation.
#[derive(ToSchema)]
pub struct Delegation {
    /// Its id.
    id: String,
    /// Who delegates.
    delegator: String,
    /// To whom.
    delegatee: String,
    /// First day.
    start: Option<String>,
    /// Last day.
    end: Option<String>,
    /// Only this entity.
    entity: Option<String>,
    /// Recorded.
    created_at: String,
}

/// Delegations.
#[derive(ToSchema)]
pub struct Delegations {
    /// Oldest first.
    items: Vec<Delegation>,
}

/// An SLA clock.
#[derive(ToSchema)]
pub struct SlaClock {
    /// Its id.
    id: String,
    /// The entity or stage it measures.
    scope: String,
    /// Its length.
    duration_minutes: u64,
    /// Started.
    started_at: String,
    /// At risk from.
    at_risk_at: Option<String>,
    /// Breaches at.
    breach_at: String,
    /// `on_track`, `at_risk`, `breached` or `met`.
    status: String,
    /// Stopped.
    stopped_at: Option<String>,
}

/// An escalation.
#[derive(ToSchema)]
pub struct Escalation {
    /// Its id.
    id: String,
    /// 1, 2, …
    level: u32,
    /// Taken from.
    from: Option<String>,
    /// Given to.
    to: Option<String>,
    /// Why.
    reason: String,
    /// When.
    at: String,
}

/// An instance's SLA clocks and escalations.
#[derive(ToSchema)]
pub struct Sla {
    /// Its clocks.
    clocks: Vec<SlaClock>,
    /// Its escalations, oldest first.
    escalations: Vec<Escalation>,
}

/// A record with its instance (`contact`, `opportunity` or `campaign` plus `instance`).
#[derive(ToSchema)]
pub struct RecordAndInstance {
    /// The instance that runs the record's pipeline.
    instance: Instance,
}

/// A list of records (contacts, opportunities, campaigns), by id.
#[derive(ToSchema)]
pub struct Records {
    /// The records.
    #[schema(value_type = Vec<Object>)]
    items: Vec<Json>,
    /// Pass as `after` for the next page.
    next_after: Option<String>,
}

/// `POST /v1/contacts`.
#[derive(ToSchema)]
#[schema(example = json!({"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical"}))]
pub struct NewContact {
    /// Name (required, not blank).
    name: String,
    /// Email.
    email: Option<String>,
    /// Phone.
    phone: Option<String>,
    /// Company.
    company: Option<String>,
    /// Status (default `contact`).
    status: Option<String>,
    /// Lead score.
    score: Option<f64>,
    /// Other fields.
    #[schema(value_type = Option<Object>)]
    fields: Option<Json>,
}

/// `POST /v1/leads`: a contact and the lead instance of `definition`.
#[derive(ToSchema)]
#[schema(example = json!({"definition": "sales-pipeline", "name": "Ada", "data": {"lead_score": 80}}))]
pub struct NewLead {
    /// The definition whose `lead` entity runs the lead.
    definition: String,
    /// Name (required, not blank).
    name: String,
    /// Email.
    email: Option<String>,
    /// Phone.
    phone: Option<String>,
    /// Company.
    company: Option<String>,
    /// Lead score.
    score: Option<f64>,
    /// Other contact fields.
    #[schema(value_type = Option<Object>)]
    fields: Option<Json>,
    /// The lead instance's data.
    #[schema(value_type = Option<Object>)]
    data: Option<Json>,
}

/// `POST /v1/leads/{id}/convert`.
#[derive(ToSchema)]
#[schema(example = json!({"value": 12000.0, "currency": "EUR", "probability": 0.4, "close_date": "2026-12-31"}))]
pub struct Convert {
    /// Amount, 0 or more.
    value: f64,
    /// ISO 4217 code, three capital letters.
    currency: String,
    /// Win probability, 0 to 1.
    probability: f64,
    /// Expected close date, `YYYY-MM-DD`.
    close_date: Option<String>,
    /// The opportunity instance's data.
    #[schema(value_type = Option<Object>)]
    data: Option<Json>,
}

/// `POST /v1/campaigns`.
#[derive(ToSchema)]
#[schema(example = json!({"definition": "deal-desk", "name": "Spring launch", "type": "email"}))]
pub struct NewCampaign {
    /// The definition whose `campaign` entity runs it.
    definition: String,
    /// Name (required, not blank).
    name: String,
    /// `email`, `event`, …
    #[schema(rename = "type")]
    kind: Option<String>,
    /// First day, `YYYY-MM-DD`.
    start: Option<String>,
    /// Last day.
    end: Option<String>,
    /// The campaign instance's data.
    #[schema(value_type = Option<Object>)]
    data: Option<Json>,
}
