//! Between the interpreter's typed state and the store's rows: an instance's rows
//! ([`StoredInstanceState`]) become an [`InstanceState`], a [`Step`] becomes one [`Commit`]
//! (its SLA clocks and escalations by [`sla`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::engine::eval::{Actor, Record};
use crate::engine::machine::{
    ActionRun, ApprovalResponse, Directory, InstanceState, InstanceStatus, Machine, OutboxItem, OutboxKind,
    PendingApproval, RunId, RunStatus, SYSTEM, Step, TimerChange, Token, TokenStatus, Vote, events,
};
use crate::engine::service::EngineError;
use crate::ir::{Definition, StageId};
use crate::store::{
    ApprovalWrite, AssignmentChange, Commit, InstanceRow, InstanceUpdate, InstanceWrite, NewHistory,
    NewInstance, NewOutbox, NumberRequest, RequestStatus, RunRow, StoredDecision, StoredInstanceState,
    StoredInstanceStatus, StoredOutboxKind, StoredRunStatus, StoredTokenStatus, TimerWrite, TokenWrite,
    new_id,
};

mod sla;

pub(super) use sla::breached as sla_breached;

/// An instance as read: the machine's state plus what the store needs to write it back.
pub(super) struct Loaded {
    /// The instance row as read (ids, pinned definition, `ended_at`).
    pub row: InstanceRow,
    /// The state the machine runs on.
    pub state: InstanceState,
    /// The store ids of `state.tokens`, in the same order.
    pub token_ids: Vec<String>,
}

/// Builds the machine's state from the store's snapshot: every token of the running gateway
/// (finished ones too, so a join still waits for a cancelled branch), the action runs, and the
/// pending approval with its requester.
pub(super) fn load(machine: &Machine, rows: StoredInstanceState) -> Result<Loaded, EngineError> {
    let def = machine.definition();
    let row = rows.instance;
    let bad = |detail: String| EngineError::Inconsistent { id: row.id.clone(), detail };
    let entity =
        def.entity_named(&row.entity).ok_or_else(|| bad(format!("unknown entity `{}`", row.entity)))?;
    let stage_of =
        |name: &str| def.stage_named(entity, name).ok_or_else(|| bad(format!("unknown stage `{name}`")));

    let mut tokens = Vec::with_capacity(rows.tokens.len());
    let mut token_ids = Vec::with_capacity(rows.tokens.len());
    for t in rows.tokens {
        let gateway =
            def.gateway_named(&t.gateway).ok_or_else(|| bad(format!("unknown gateway `{}`", t.gateway)))?;
        let branch = def
            .gateway(gateway)
            .branches
            .iter()
            .position(|b| b.name == t.branch)
            .ok_or_else(|| bad(format!("unknown branch `{}` of `{}`", t.branch, t.gateway)))?;
        tokens.push(Token {
            gateway,
            branch,
            stage: t.stage.as_deref().map(stage_of).transpose()?,
            status: token_status(t.status),
            entered_at: t.entered_at,
        });
        token_ids.push(t.id);
    }

    let stage = stage_of(&row.stage)?;
    let pending_approval = match rows.approvals.into_iter().next() {
        None => None,
        Some(p) => {
            let transition = def
                .transition_named(&p.request.transition)
                .ok_or_else(|| bad(format!("unknown transition `{}`", p.request.transition)))?;
            let from = &def.transition(transition).from;
            // The approval moves the main stage when its transition leaves from there, otherwise
            // the first active token it leaves from: the same rule `fire` applied when requesting.
            let branch = if from.contains(&stage) {
                None
            } else {
                tokens
                    .iter()
                    .find(|t| t.status == TokenStatus::Active && t.stage.is_some_and(|s| from.contains(&s)))
                    .map(|t| t.branch)
            };
            Some(PendingApproval {
                transition,
                branch,
                requested_by: p.request.requested_by.unwrap_or_else(|| SYSTEM.to_owned()),
                requested_at: p.request.requested_at,
                responses: p
                    .responses
                    .into_iter()
                    .map(|r| ApprovalResponse {
                        approver: r.approver,
                        vote: match r.decision {
                            StoredDecision::Approve => Vote::Approve,
                            StoredDecision::Reject => Vote::Reject,
                        },
                        at: r.created_at,
                    })
                    .collect(),
            })
        }
    };

    let state = InstanceState {
        entity,
        stage,
        status: match row.status {
            StoredInstanceStatus::Active => InstanceStatus::Active,
            StoredInstanceStatus::Completed => InstanceStatus::Completed,
        },
        // Written by this engine after validation; re-validating would refuse instances whose
        // data predates a tightened custom field.
        data: Arc::new(Record::from_json(&def.data, &row.data)),
        tokens,
        pending_approval,
        assignee: row.assignee.clone(),
        stage_entered_at: row.stage_entered_at,
        started_at: row.started_at,
        runs: rows.runs.iter().map(|r| action_run(def, r)).collect::<Result<_, String>>().map_err(bad)?,
        version: row.version,
    };
    Ok(Loaded { row, state, token_ids })
}

/// The insert of a new instance pinned to `definition_version`.
pub(super) fn insert(
    machine: &Machine,
    id: &str,
    definition_version: u64,
    state: &InstanceState,
    now: DateTime<Utc>,
) -> InstanceWrite {
    let def = machine.definition();
    let number = def.entity(state.entity).number.as_ref().map(|pattern| {
        let template = pattern.template(now.date_naive());
        NumberRequest {
            pattern: pattern.source.clone(),
            period: template.period,
            prefix: template.prefix,
            suffix: template.suffix,
            width: template.width,
        }
    });
    InstanceWrite::Insert(NewInstance {
        id: id.to_owned(),
        definition_id: def.id.clone(),
        definition_version,
        entity: def.entity(state.entity).name.clone(),
        subject_type: None,
        subject_id: None,
        stage: machine.stage_name(state).to_owned(),
        status: store_status(state.status),
        data: machine.data_json(state),
        assignee: state.assignee.clone(),
        runs: run_rows(def, &state.runs),
        number,
    })
}

/// The update of a loaded instance to `state`, under the optimistic lock of the version read.
pub(super) fn update(
    machine: &Machine,
    loaded: &Loaded,
    state: &InstanceState,
    now: DateTime<Utc>,
) -> InstanceWrite {
    let completed = state.status == InstanceStatus::Completed;
    InstanceWrite::Update(InstanceUpdate {
        id: loaded.row.id.clone(),
        expected_version: loaded.row.version,
        stage: machine.stage_name(state).to_owned(),
        status: store_status(state.status),
        data: machine.data_json(state),
        assignee: state.assignee.clone(),
        stage_entered_at: state.stage_entered_at,
        ended_at: if completed { loaded.row.ended_at.or(Some(now)) } else { None },
        runs: run_rows(machine.definition(), &state.runs),
    })
}

/// The instance row as `write` leaves it, committed at `now` (`before`: the row it updates):
/// what a reload would read, so the engine can keep it instead of reading it again.
pub(super) fn written_row(
    write: &InstanceWrite,
    before: Option<&InstanceRow>,
    now: DateTime<Utc>,
) -> Option<InstanceRow> {
    Some(match write {
        InstanceWrite::Insert(new) => InstanceRow {
            id: new.id.clone(),
            definition_id: new.definition_id.clone(),
            definition_version: new.definition_version,
            entity: new.entity.clone(),
            subject_type: new.subject_type.clone(),
            subject_id: new.subject_id.clone(),
            stage: new.stage.clone(),
            status: new.status,
            data: new.data.clone(),
            assignee: new.assignee.clone(),
            version: 1,
            stage_entered_at: now,
            started_at: now,
            updated_at: now,
            ended_at: (new.status == StoredInstanceStatus::Completed).then_some(now),
            // Known once committed: the caller sets it from `Committed::number`.
            number: None,
        },
        InstanceWrite::Unchanged { .. } => return None,
        InstanceWrite::Update(update) => InstanceRow {
            stage: update.stage.clone(),
            status: update.status,
            data: update.data.clone(),
            assignee: update.assignee.clone(),
            version: update.expected_version + 1,
            stage_entered_at: update.stage_entered_at,
            updated_at: now,
            ended_at: update.ended_at,
            ..before?.clone()
        },
    })
}

/// Everything `step` writes, around `instance`: history, outbox, timers, tokens, approvals and
/// assignment. `before` is the loaded instance (`None` on creation). Also the store ids of the
/// step's tokens, in order.
pub(super) fn commit(
    machine: &Machine,
    instance: InstanceWrite,
    before: Option<&Loaded>,
    step: Step,
    actor: &Actor,
    directory: &dyn Directory,
    now: DateTime<Utc>,
) -> Result<(Commit, Vec<String>), EngineError> {
    let def = machine.definition();
    let mut commit = Commit::new(now);
    let id = instance.id().to_owned();
    commit.instance = Some(instance);

    let before_assignee = before.and_then(|b| b.state.assignee.as_deref());
    if step.state.assignee.as_deref() != before_assignee {
        commit.assignment = Some(match &step.state.assignee {
            Some(user) => AssignmentChange::Assign { user_id: user.clone(), assigned_by: user_id(&actor.id) },
            None => AssignmentChange::Unassign,
        });
    }
    let (tokens, token_ids) = token_writes(def, before, &step);
    commit.tokens = tokens;
    commit.approvals = approval_writes(def, &id, &step, directory)?;
    for change in &step.timers {
        commit.timers.extend(timer_writes(def, change));
    }
    (commit.sla, commit.escalations) = sla::writes(def, &id, before, &step, now);
    commit.outbox = step.outbox.into_iter().map(outbox).collect();
    commit.history = step
        .history
        .into_iter()
        .map(|h| NewHistory {
            event: h.event.to_owned(),
            before: non_null(h.before),
            after: non_null(h.after),
            actor_id: user_id(&h.actor),
            payload: non_null(h.payload),
        })
        .collect();
    Ok((commit, token_ids))
}

/// The store's actor column: `None` for the machine's system actor, as the store documents.
fn user_id(actor: &str) -> Option<String> {
    (actor != SYSTEM).then(|| actor.to_owned())
}

fn non_null(json: Json) -> Option<Json> {
    (!json.is_null()).then_some(json)
}

fn store_status(status: InstanceStatus) -> StoredInstanceStatus {
    match status {
        InstanceStatus::Active => StoredInstanceStatus::Active,
        InstanceStatus::Completed => StoredInstanceStatus::Completed,
    }
}

/// A run id as the outbox payload and the store write it: `"<step>.<seq>"`.
pub(super) fn parse_run(text: &str) -> Option<RunId> {
    let (step, seq) = text.split_once('.')?;
    Some(RunId { step: step.parse().ok()?, seq: seq.parse().ok()? })
}

/// A stored run as the machine's; the error says what does not fit the definition.
fn action_run(def: &Definition, r: &RunRow) -> Result<ActionRun, String> {
    let run = |text: &str| parse_run(text).ok_or_else(|| format!("malformed run id `{text}`"));
    let action = def.action_named(&r.action).ok_or_else(|| format!("unknown action `{}`", r.action))?;
    let branch = match (&r.gateway, &r.branch) {
        (None, None) => None,
        (Some(gateway), Some(branch)) => {
            let g = def.gateway_named(gateway).ok_or_else(|| format!("unknown gateway `{gateway}`"))?;
            let b = def
                .gateway(g)
                .branches
                .iter()
                .position(|b| b.name == *branch)
                .ok_or_else(|| format!("unknown branch `{branch}` of `{gateway}`"))?;
            Some((g, b))
        }
        _ => return Err(format!("run `{}` names a gateway or a branch without the other", r.id)),
    };
    let status = match r.status {
        StoredRunStatus::Pending => RunStatus::Pending,
        StoredRunStatus::Succeeded => RunStatus::Succeeded,
        StoredRunStatus::Failed => RunStatus::Failed,
        StoredRunStatus::Compensated => RunStatus::Compensated,
    };
    Ok(ActionRun { id: run(&r.id)?, group: run(&r.group)?, action, branch, status })
}

fn run_rows(def: &Definition, runs: &[ActionRun]) -> Vec<RunRow> {
    runs.iter()
        .map(|r| {
            let branch = r.branch.map(|(g, b)| {
                let g = def.gateway(g);
                (g.name.clone(), g.branches[b].name.clone())
            });
            RunRow {
                id: r.id.to_string(),
                group: r.group.to_string(),
                action: def.action(r.action).name.clone(),
                gateway: branch.as_ref().map(|(g, _)| g.clone()),
                branch: branch.map(|(_, b)| b),
                status: match r.status {
                    RunStatus::Pending => StoredRunStatus::Pending,
                    RunStatus::Succeeded => StoredRunStatus::Succeeded,
                    RunStatus::Failed => StoredRunStatus::Failed,
                    RunStatus::Compensated => StoredRunStatus::Compensated,
                },
            }
        })
        .collect()
}

fn token_status(status: StoredTokenStatus) -> TokenStatus {
    match status {
        StoredTokenStatus::Active => TokenStatus::Active,
        StoredTokenStatus::Completed => TokenStatus::Completed,
        StoredTokenStatus::Cancelled => TokenStatus::Cancelled,
    }
}

fn store_token_status(status: TokenStatus) -> StoredTokenStatus {
    match status {
        TokenStatus::Active => StoredTokenStatus::Active,
        TokenStatus::Completed => StoredTokenStatus::Completed,
        TokenStatus::Cancelled => StoredTokenStatus::Cancelled,
    }
}

/// Token rows follow the state; also the store ids of the step's tokens, in order.
///
/// Within one gateway run tokens are identified by (gateway, branch) and changed in place. When
/// the step ended the run (joined, cancelled, or forked anew, e.g. a loop back to the fork
/// stage) the old run's tokens are ended as one, and a fork's tokens are a new run with fresh ids.
fn token_writes(def: &Definition, before: Option<&Loaded>, step: &Step) -> (Vec<TokenWrite>, Vec<String>) {
    let forked = step.history.iter().any(|h| h.event == events::GATEWAY_FORKED);
    let stage_name = |stage: Option<StageId>| stage.map(|s| def.stage(s).name.clone());
    let (old, old_ids) = before.map_or((&[][..], &[][..]), |b| (&b.state.tokens[..], &b.token_ids[..]));
    let mut writes = Vec::new();
    let mut ids = Vec::with_capacity(step.state.tokens.len());

    if !forked && !old.is_empty() && !step.state.tokens.is_empty() {
        for t in &step.state.tokens {
            let found = old.iter().position(|o| o.gateway == t.gateway && o.branch == t.branch);
            let (Some(i), Some(id)) = (found, found.and_then(|i| old_ids.get(i))) else {
                // The machine only adds tokens by forking; a stray one still gets a row.
                let id = new_id();
                start_token(def, &mut writes, &id, t);
                ids.push(id);
                continue;
            };
            let o = &old[i];
            if t.stage != o.stage || t.status != o.status || t.entered_at != o.entered_at {
                writes.push(TokenWrite::Set {
                    id: id.clone(),
                    stage: stage_name(t.stage),
                    status: store_token_status(t.status),
                    entered_at: t.entered_at,
                });
            }
            ids.push(id.clone());
        }
        return (writes, ids);
    }

    if !old.is_empty() {
        let joined = step.history.iter().any(|h| h.event == events::GATEWAY_JOINED);
        let status = if joined { StoredTokenStatus::Completed } else { StoredTokenStatus::Cancelled };
        writes.push(TokenWrite::End { status });
    }
    // One id prefix per fork, suffixed by branch position: the store lists tokens by
    // (created_at, id), which keeps them in branch order, as the machine expects.
    let prefix = new_id();
    for t in &step.state.tokens {
        let id = format!("{prefix}-{:04}", t.branch);
        start_token(def, &mut writes, &id, t);
        ids.push(id);
    }
    (writes, ids)
}

/// The rows of a new token: started active, then set if it is already done.
fn start_token(def: &Definition, writes: &mut Vec<TokenWrite>, id: &str, t: &Token) {
    let g = def.gateway(t.gateway);
    let stage = t.stage.map(|s| def.stage(s).name.clone());
    writes.push(TokenWrite::Start {
        id: id.to_owned(),
        gateway: g.name.clone(),
        branch: g.branches[t.branch].name.clone(),
        stage: stage.clone(),
    });
    if t.status != TokenStatus::Active {
        writes.push(TokenWrite::Set {
            id: id.to_owned(),
            stage,
            status: store_token_status(t.status),
            entered_at: t.entered_at,
        });
    }
}

/// Approval rows follow the step's approval history entries, in order: the resolving response
/// is only there (the state has already dropped the approval it resolved).
fn approval_writes(
    def: &Definition,
    instance: &str,
    step: &Step,
    directory: &dyn Directory,
) -> Result<Vec<ApprovalWrite>, EngineError> {
    let field = |payload: &Json, key: &str| {
        payload.get(key).and_then(Json::as_str).map(str::to_owned).ok_or_else(|| EngineError::Inconsistent {
            id: instance.to_owned(),
            detail: format!("approval history entry without `{key}`"),
        })
    };
    let mut writes = Vec::new();
    for h in &step.history {
        let write = match h.event {
            events::APPROVAL_REQUESTED => {
                let transition = field(&h.payload, "transition")?;
                let approval =
                    def.transition_named(&transition).and_then(|t| def.transition(t).approval.as_ref());
                // Who is asked, roles resolved now: the dashboard lists the request for them.
                let mut assignees: Vec<String> = approval.map(|a| a.users.clone()).unwrap_or_default();
                for role in approval.map(|a| a.roles.as_slice()).unwrap_or_default() {
                    assignees.extend(directory.members(role));
                }
                assignees.sort_unstable();
                assignees.dedup();
                ApprovalWrite::Request { transition, assignees, requested_by: user_id(&h.actor) }
            }
            events::APPROVAL_RESPONDED => ApprovalWrite::Respond {
                id: new_id(),
                transition: field(&h.payload, "transition")?,
                approver: field(&h.payload, "approver")?,
                decision: if field(&h.payload, "vote")? == Vote::Reject.as_str() {
                    StoredDecision::Reject
                } else {
                    StoredDecision::Approve
                },
                comment: None,
            },
            events::APPROVAL_GRANTED | events::APPROVAL_REJECTED | events::APPROVAL_CANCELLED => {
                let status = match h.event {
                    events::APPROVAL_GRANTED => RequestStatus::Approved,
                    events::APPROVAL_REJECTED => RequestStatus::Rejected,
                    _ => RequestStatus::Cancelled,
                };
                ApprovalWrite::Resolve { transition: field(&h.payload, "transition")?, status }
            }
            _ => continue,
        };
        writes.push(write);
    }
    Ok(writes)
}

/// A timer change as rows: scheduling replaces the pending timer of the same kind.
fn timer_writes(def: &Definition, change: &TimerChange) -> Vec<TimerWrite> {
    match change {
        TimerChange::Schedule(timer) => {
            let kind = timer.kind.encode(def);
            vec![
                TimerWrite::CancelKind { kind: kind.clone() },
                TimerWrite::Schedule { id: new_id(), kind, trigger_at: timer.due, payload: json!({}) },
            ]
        }
        TimerChange::Cancel(kind) => vec![TimerWrite::CancelKind { kind: kind.encode(def) }],
    }
}

/// An outbox item as a row; the run id goes into the payload, so whoever delivers the action can
/// report its outcome.
fn outbox(item: OutboxItem) -> NewOutbox {
    let mut payload = item.payload;
    if let (Some(run), Json::Object(map)) = (item.run, &mut payload) {
        map.insert("run".to_owned(), Json::String(run.to_string()));
    }
    NewOutbox {
        id: new_id(),
        kind: match item.kind {
            OutboxKind::Event => StoredOutboxKind::Event,
            OutboxKind::Action => StoredOutboxKind::Action,
            OutboxKind::Compensation => StoredOutboxKind::Compensation,
        },
        name: item.name.into_owned(),
        payload,
    }
}
