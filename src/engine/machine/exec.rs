//! The working copy a command mutates. Commands build one from the caller's state, change it,
//! and either turn it into a [`Step`] or drop it with an error — the caller's state is never
//! touched, so a refused command has no effect at all.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value as Json};

use super::approval::decide_builtin;
use super::error::MachineError;
use super::state::{
    ActionRun, ApprovalResponse, InstanceState, InstanceStatus, PendingApproval, RunId, RunStatus, Token,
    TokenStatus, Vote,
};
use super::step::{
    AssignmentRequest, HistoryEntry, OutboxItem, OutboxKind, Step, Timer, TimerChange, TimerKind, events,
};
use super::{Decision, Directory, ENGINE_ACTOR, MAX_AUTO_STEPS, Machine, RECHECK_EVERY};
use crate::engine::data::{Change, value_to_json};
use crate::engine::eval::{Actor, Context, Record, evaluate_condition};
use crate::ir::{
    self, ActionId, ActionKind, BranchCompletion, Condition, Definition, EntityId, FieldId, Gateway,
    GatewayId, GatewayKind, Guard, ReminderTarget, StageId, TransitionId, Trigger,
};

/// What a transition moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The main stage.
    Main,
    /// The token at this index of `tokens`.
    Branch(usize),
}

/// The next automatic step.
enum Auto {
    Transition(TransitionId, Target),
    Fork(GatewayId, Vec<usize>),
}

pub(super) struct Exec<'m> {
    pub(super) m: &'m Machine,
    pub(super) def: &'m Definition,
    pub(super) state: InstanceState,
    history: Vec<HistoryEntry>,
    outbox: Vec<OutboxItem>,
    timers: Vec<TimerChange>,
    now: DateTime<Utc>,
    /// The next run's position in this step.
    seq: u32,
    /// Automatic transitions already reported as refused in this command.
    refused: Vec<&'m str>,
    /// Automatic steps taken in this command, for the limit's error.
    auto_path: Vec<&'m str>,
    /// The assignee the engine must choose before applying the step.
    pub(super) assignment: Option<AssignmentRequest>,
    /// The data the command started from: SLA durations chosen from data are recomputed when
    /// it changed.
    initial_data: Arc<Record>,
}

impl<'m> Exec<'m> {
    /// A working copy of an active instance's state.
    pub(super) fn new(
        m: &'m Machine,
        state: &InstanceState,
        now: DateTime<Utc>,
    ) -> Result<Self, MachineError> {
        if state.status == InstanceStatus::Completed {
            return Err(MachineError::InstanceCompleted { stage: m.def.stage(state.stage).name.clone() });
        }
        Ok(Self::resume(m, state, now))
    }

    /// A working copy of any state (action outcomes arrive after completion too).
    pub(super) fn resume(m: &'m Machine, state: &InstanceState, now: DateTime<Utc>) -> Self {
        Self::start(m, state.clone(), now)
    }

    fn start(m: &'m Machine, mut state: InstanceState, now: DateTime<Utc>) -> Self {
        state.version += 1;
        let initial_data = state.data.clone();
        Self {
            m,
            def: &m.def,
            state,
            history: Vec::new(),
            outbox: Vec::new(),
            timers: Vec::new(),
            now,
            seq: 0,
            refused: Vec::new(),
            auto_path: Vec::new(),
            assignment: None,
            initial_data,
        }
    }

    /// Runs automatic transitions, then hands out the step.
    pub(super) fn finish(mut self) -> Result<Step, MachineError> {
        self.settle()?;
        self.retime_slas();
        Ok(Step {
            state: self.state,
            history: self.history,
            outbox: self.outbox,
            timers: self.timers,
            assignment: self.assignment,
        })
    }

    // ----- commands -----------------------------------------------------------------------------

    pub(super) fn create(
        m: &'m Machine,
        entity: EntityId,
        record: Record,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let e = m.def.entity(entity);
        let state = InstanceState {
            entity,
            stage: e.initial,
            status: InstanceStatus::Active,
            data: Arc::new(record),
            tokens: Vec::new(),
            pending_approval: None,
            assignee: None,
            stage_entered_at: now,
            started_at: now,
            runs: Vec::new(),
            version: 0,
        };
        let mut exec = Self::start(m, state, now);
        let stage = string(&exec.def.stage(e.initial).name);
        let after = obj([("stage", stage.clone()), ("data", exec.state.data.to_json(&exec.def.data))]);
        exec.record(events::INSTANCE_CREATED, Json::Null, after, actor, obj([("entity", string(&e.name))]));
        exec.emit(events::INSTANCE_CREATED, obj([("entity", string(&e.name)), ("stage", stage)]));
        exec.schedule_entity_timers();
        exec.enter_main(e.initial);
        exec.finish()
    }

    pub(super) fn data_updated(&mut self, record: Record, changes: Vec<Change>, actor: &Actor) {
        self.state.data = Arc::new(record);
        if changes.is_empty() {
            return;
        }
        let fields = Json::Array(changes.iter().map(|c| string(&c.name)).collect());
        let (before, after) = data_maps(&changes);
        self.record(
            events::DATA_UPDATED,
            obj([("data", before)]),
            obj([("data", after)]),
            actor,
            obj([("fields", fields.clone())]),
        );
        self.emit(events::DATA_UPDATED, obj([("fields", fields)]));
    }

    pub(super) fn fire(&mut self, id: TransitionId, actor: &Actor) -> Result<(), MachineError> {
        let t = self.def.transition(id);
        self.same_entity(&t.name, t.entity)?;
        let target = self.target(&t.from).ok_or_else(|| self.wrong_stage(&t.name, &t.from))?;
        self.admissible(&t.name, &t.guards, t.condition.as_ref(), self.stage_of(target), actor)?;
        if t.approval.is_none() {
            self.apply(id, target, actor);
            return Ok(());
        }
        if let Some(pending) = &self.state.pending_approval {
            let transition = self.def.transition(pending.transition).name.clone();
            return Err(MachineError::ApprovalPending { transition });
        }
        self.check_strategy(id)?;
        self.request_approval(id, target, actor);
        Ok(())
    }

    pub(super) fn fork(&mut self, id: GatewayId, actor: &Actor) -> Result<(), MachineError> {
        let g = self.def.gateway(id);
        self.same_entity(&g.name, g.entity)?;
        if let Some(token) = self.state.tokens.first() {
            return Err(MachineError::GatewayRunning {
                gateway: self.def.gateway(token.gateway).name.clone(),
            });
        }
        if !g.from.contains(&self.state.stage) {
            return Err(self.wrong_stage(&g.name, &g.from));
        }
        self.admissible(&g.name, &g.guards, g.condition.as_ref(), self.state.stage, actor)?;
        let branches = self.branches(g, actor)?;
        self.start_branches(id, &branches, actor);
        Ok(())
    }

    pub(super) fn respond(
        &mut self,
        id: TransitionId,
        approver: &Actor,
        vote: Vote,
        directory: &dyn Directory,
    ) -> Result<(), MachineError> {
        let def = self.def;
        let t = def.transition(id);
        let no_pending = || MachineError::NoPendingApproval { transition: t.name.clone() };
        let approval = t.approval.as_ref().ok_or_else(no_pending)?;
        let pending =
            self.state.pending_approval.as_mut().filter(|p| p.transition == id).ok_or_else(no_pending)?;
        let eligible = approval.users.contains(&approver.id)
            || approval.roles.iter().any(|r| approver.roles.contains(r));
        if !eligible {
            return Err(MachineError::NotAnApprover {
                approver: approver.id.clone(),
                transition: t.name.clone(),
            });
        }
        if pending.responses.iter().any(|r| r.approver == approver.id) {
            return Err(MachineError::AlreadyResponded { approver: approver.id.clone() });
        }
        pending.responses.push(ApprovalResponse { approver: approver.id.clone(), vote, at: self.now });
        let responses = pending.responses.clone();

        // Everyone asked: the users, the roles' members, and whoever answered through a role.
        let mut assignees: BTreeSet<String> = approval.users.iter().cloned().collect();
        assignees.extend(approval.roles.iter().flat_map(|role| directory.members(role)));
        assignees.extend(responses.iter().map(|r| r.approver.clone()));
        let decision = self.decide(approval, assignees.len(), &responses)?;

        let payload = obj([
            ("transition", string(&t.name)),
            ("approver", string(&approver.id)),
            ("vote", string(vote.as_str())),
        ]);
        self.record(events::APPROVAL_RESPONDED, Json::Null, Json::Null, approver, payload.clone());
        self.emit(events::APPROVAL_RESPONDED, payload);
        if decision == Decision::Pending {
            return Ok(());
        }
        let pending = self.state.pending_approval.take().ok_or_else(no_pending)?;
        let before = obj([("pending_approval", string(&t.name))]);
        let after = obj([("pending_approval", Json::Null)]);
        let payload = obj([("transition", string(&t.name)), ("requested_by", string(&pending.requested_by))]);
        if decision == Decision::Rejected {
            self.record(events::APPROVAL_REJECTED, before, after, approver, payload.clone());
            self.emit(events::APPROVAL_REJECTED, payload);
            return Ok(());
        }
        self.record(events::APPROVAL_GRANTED, before, after, approver, payload.clone());
        self.emit(events::APPROVAL_GRANTED, payload);
        let target = match pending.branch {
            None => Some(Target::Main),
            Some(branch) => self.active_token(self.token_gateway(), branch).map(Target::Branch),
        };
        self.apply(id, target.ok_or_else(no_pending)?, approver);
        Ok(())
    }

    pub(super) fn complete_branch(
        &mut self,
        id: GatewayId,
        branch: usize,
        actor: &Actor,
    ) -> Result<(), MachineError> {
        let g = self.def.gateway(id);
        let not_active =
            |name: String| MachineError::BranchNotActive { gateway: g.name.clone(), branch: name };
        let b = g.branches.get(branch).ok_or_else(|| not_active(format!("#{branch}")))?;
        let how = match b.completion() {
            BranchCompletion::UserCompletes => None,
            BranchCompletion::ReachesJoin => Some("by reaching the join stage"),
            BranchCompletion::ActionSucceeds => Some("when its action succeeds"),
        };
        if let Some(how) = how {
            return Err(MachineError::BranchNotManual {
                gateway: g.name.clone(),
                branch: b.name.clone(),
                how,
            });
        }
        let index = self.active_token(Some(id), branch).ok_or_else(|| not_active(b.name.clone()))?;
        self.complete_token(index, actor);
        self.try_join(actor);
        Ok(())
    }

    pub(super) fn action_succeeded(&mut self, run: RunId) -> Result<(), MachineError> {
        let index = self.pending_run(run)?;
        self.state.runs[index].status = RunStatus::Succeeded;
        let done = self.state.runs[index].clone();
        let action = self.def.action(done.action);
        let group_failed =
            self.state.runs.iter().any(|r| r.group == done.group && r.status == RunStatus::Failed);
        let mut changes = Vec::new();
        let mut compensation = Json::Null;
        if let (true, Some(undo)) = (group_failed, action.compensation) {
            // Its group already failed: undo it as soon as it is done.
            self.state.runs[index].status = RunStatus::Compensated;
            changes.extend(self.compensate(undo, &done, "its group failed earlier"));
            compensation = string(&self.def.action(undo).name);
        }
        let (before, after) = with_data(&changes);
        let payload = obj([
            ("action", string(&action.name)),
            ("run", string(&run.to_string())),
            ("compensation", compensation),
        ]);
        self.record(events::ACTION_SUCCEEDED, before, after, &ENGINE_ACTOR, payload);
        if let Some((gateway, branch)) = done.branch
            && self.state.status == InstanceStatus::Active
            && let Some(token) = self.active_token(Some(gateway), branch)
        {
            self.complete_token(token, &ENGINE_ACTOR);
            self.try_join(&ENGINE_ACTOR);
        }
        self.prune(done.group);
        Ok(())
    }

    pub(super) fn action_failed(&mut self, run: RunId, reason: &str) -> Result<(), MachineError> {
        let index = self.pending_run(run)?;
        self.state.runs[index].status = RunStatus::Failed;
        let failed = self.state.runs[index].clone();
        // Runs are stored in enqueue order, so walking backwards undoes in reverse (seed BR-004).
        let mut compensations = Vec::new();
        let mut changes = Vec::new();
        for i in (0..self.state.runs.len()).rev() {
            let run = &self.state.runs[i];
            if run.group != failed.group || run.status != RunStatus::Succeeded {
                continue;
            }
            if let Some(undo) = self.def.action(run.action).compensation {
                let run = run.clone();
                self.state.runs[i].status = RunStatus::Compensated;
                changes.extend(self.compensate(undo, &run, reason));
                compensations.push(string(&self.def.action(undo).name));
            }
        }
        let action = &self.def.action(failed.action).name;
        let (before, after) = with_data(&changes);
        let payload = obj([
            ("action", string(action)),
            ("run", string(&run.to_string())),
            ("reason", string(reason)),
            ("compensations", Json::Array(compensations)),
        ]);
        self.record(events::ACTION_FAILED, before, after, &ENGINE_ACTOR, payload);
        self.emit(events::ACTION_FAILED, obj([("action", string(action)), ("reason", string(reason))]));
        if let Some((gateway, branch)) = failed.branch
            && let Some(index) = self.active_token(Some(gateway), branch)
        {
            let token = &mut self.state.tokens[index];
            token.status = TokenStatus::Cancelled;
            let stage = token.stage;
            if let Some(stage) = stage {
                self.cancel_stage_timers(stage);
            }
            let payload = self.branch_payload(gateway, branch);
            self.record(events::BRANCH_FAILED, Json::Null, Json::Null, &ENGINE_ACTOR, payload.clone());
            self.emit(events::BRANCH_FAILED, payload);
        }
        self.prune(failed.group);
        Ok(())
    }

    pub(super) fn timer_due(&mut self, timer: TimerKind) -> Result<(), MachineError> {
        let def = self.def;
        let entity = def.entity(self.state.entity);
        let stale = || MachineError::StaleTimer { timer };
        if timer.stage().is_some_and(|s| !self.state.occupies(s)) {
            return Err(stale());
        }
        let scope = |stage: Option<StageId>| stage.map_or(Json::Null, |s| string(&def.stage(s).name));
        match timer {
            TimerKind::SlaAtRisk { stage } | TimerKind::SlaBreach { stage } => {
                let sla = match stage {
                    Some(s) => def.stage(s).sla.as_ref(),
                    None => entity.sla.as_ref(),
                };
                let sla = sla.ok_or_else(stale)?;
                let breach = matches!(timer, TimerKind::SlaBreach { .. });
                let (event, changes) = if breach {
                    (
                        events::SLA_BREACHED,
                        self.run_actions(&sla.breach_actions, None, || obj([("sla", scope(stage))])),
                    )
                } else {
                    (events::SLA_AT_RISK, Vec::new())
                };
                let (before, after) = with_data(&changes);
                self.record(event, before, after, &ENGINE_ACTOR, obj([("stage", scope(stage))]));
                self.emit(event, obj([("stage", scope(stage))]));
            }
            TimerKind::Reminder { index } => {
                let reminder = entity.reminders.get(index).ok_or_else(stale)?;
                let changes =
                    self.run_actions(&[reminder.action], None, || obj([("reminder", Json::from(index))]));
                let (before, after) = with_data(&changes);
                let payload = obj([("action", string(&def.action(reminder.action).name))]);
                self.record(events::REMINDER_SENT, before, after, &ENGINE_ACTOR, payload);
            }
            TimerKind::Escalation { index, stage } => {
                let escalation = entity.escalations.get(index).ok_or_else(stale)?;
                let payload = obj([
                    ("stage", scope(Some(stage))),
                    ("level", Json::from(escalation.level)),
                    ("action", string(&def.action(escalation.action).name)),
                ]);
                let holds = match &escalation.condition {
                    Some(c) => evaluate_condition(&c.expr, &self.context(stage, &ENGINE_ACTOR)).map_err(
                        |source| MachineError::Evaluation { expression: c.source.clone(), source },
                    )?,
                    None => true,
                };
                if !holds {
                    self.record(events::ESCALATION_SKIPPED, Json::Null, Json::Null, &ENGINE_ACTOR, payload);
                    return Ok(());
                }
                let changes = self.run_actions(&[escalation.action], None, || {
                    obj([("escalation", Json::from(escalation.level))])
                });
                let (before, after) = with_data(&changes);
                self.record(events::ESCALATED, before, after, &ENGINE_ACTOR, payload.clone());
                self.emit(events::ESCALATED, payload);
            }
            // Nothing to record: `finish` settles, taking any automatic transition that holds now,
            // and leaving the stage cancels the next check scheduled here.
            TimerKind::Recheck { stage } => self.schedule(TimerKind::Recheck { stage }, RECHECK_EVERY),
        }
        Ok(())
    }

    // ----- moving -------------------------------------------------------------------------------

    /// Moves `target` along transition `id`, which is known to apply.
    fn apply(&mut self, id: TransitionId, target: Target, actor: &Actor) {
        let def = self.def;
        let t = def.transition(id);
        let from = self.stage_of(target);
        let branch = match target {
            Target::Main => None,
            Target::Branch(i) => self.state.tokens.get(i).map(|token| (token.gateway, token.branch)),
        };
        // A branch entering a terminal stage other than its join ends the gateway with it.
        let exits = match branch {
            None => true,
            Some((gateway, _)) => def.stage(t.to).terminal && t.to != def.gateway(gateway).join,
        };
        let main_before = self.state.stage;
        if exits {
            self.leave_main(actor);
        } else {
            self.cancel_stage_timers(from);
        }
        let changes = self.run_actions(&t.actions, None, || obj([("transition", string(&t.name))]));

        let (mut before, mut after) = match branch {
            Some((gateway, b)) if !exits => {
                let name = string(&def.gateway(gateway).branches[b].name);
                (
                    obj([("branch", name.clone()), ("stage", self.stage_json(from))]),
                    obj([("branch", name), ("stage", self.stage_json(t.to))]),
                )
            }
            _ => (obj([("stage", self.stage_json(main_before))]), obj([("stage", self.stage_json(t.to))])),
        };
        if !changes.is_empty() {
            let (data_before, data_after) = data_maps(&changes);
            insert(&mut before, "data", data_before);
            insert(&mut after, "data", data_after);
        }
        let mut payload = obj([("transition", string(&t.name))]);
        let mut event = obj([
            ("transition", string(&t.name)),
            ("from", self.stage_json(from)),
            ("to", self.stage_json(t.to)),
        ]);
        if let Some((gateway, b)) = branch {
            let g = def.gateway(gateway);
            for map in [&mut payload, &mut event] {
                insert(map, "gateway", string(&g.name));
                insert(map, "branch", string(&g.branches[b].name));
            }
        }
        self.record(events::TRANSITION_COMPLETED, before, after, actor, payload);
        self.emit(events::TRANSITION_COMPLETED, event);

        match target {
            Target::Branch(i) if !exits => {
                let Some(token) = self.state.tokens.get_mut(i) else { return };
                token.stage = Some(t.to);
                token.entered_at = self.now;
                let join = def.gateway(token.gateway).join;
                if t.to == join {
                    self.complete_token(i, actor);
                    self.try_join(actor);
                } else {
                    self.schedule_stage_timers(t.to);
                }
            }
            _ => self.enter_main(t.to),
        }
    }

    /// Leaves the main stage: cancels its timers and any running branches.
    fn leave_main(&mut self, actor: &Actor) {
        self.cancel_stage_timers(self.state.stage);
        let tokens = std::mem::take(&mut self.state.tokens);
        let Some(first) = tokens.first() else { return };
        let g = self.def.gateway(first.gateway);
        let mut running = Vec::new();
        for token in tokens.iter().filter(|t| t.status == TokenStatus::Active) {
            if let Some(stage) = token.stage {
                self.cancel_stage_timers(stage);
            }
            running.push(string(&g.branches[token.branch].name));
        }
        let payload = obj([("gateway", string(&g.name)), ("cancelled", Json::Array(running.clone()))]);
        let before = obj([("branches", Json::Array(running))]);
        let after = obj([("branches", Json::Array(Vec::new()))]);
        self.record(events::GATEWAY_CANCELLED, before, after, actor, payload.clone());
        self.emit(events::GATEWAY_CANCELLED, payload);
    }

    /// Makes `to` the main stage: events, timers, completion on a terminal stage.
    fn enter_main(&mut self, to: StageId) {
        self.state.stage = to;
        self.state.stage_entered_at = self.now;
        let stage = self.def.stage(to);
        self.emit(events::STAGE_ENTERED, obj([("stage", string(&stage.name))]));
        // The domain's name for the same fact (`lead_qualified`, `campaign_active`), so a
        // subscriber listens for what it cares about without decoding payloads.
        self.emit_domain(&stage.name, &stage.name);
        if stage.terminal {
            self.state.status = InstanceStatus::Completed;
            self.emit(events::INSTANCE_COMPLETED, obj([("stage", string(&stage.name))]));
            self.emit_domain("closed", &stage.name);
            self.cancel_entity_timers();
        } else {
            self.schedule_stage_timers(to);
            self.schedule_stage_reminders(to);
            self.request_entity_assignment(to);
        }
    }

    fn request_approval(&mut self, id: TransitionId, target: Target, actor: &Actor) {
        let t = self.def.transition(id);
        let branch = match target {
            Target::Main => None,
            Target::Branch(i) => self.state.tokens.get(i).map(|token| token.branch),
        };
        self.state.pending_approval = Some(PendingApproval {
            transition: id,
            branch,
            requested_by: actor.id.clone(),
            requested_at: self.now,
            responses: Vec::new(),
        });
        let Some(approval) = &t.approval else { return };
        let names = |list: &[String]| Json::Array(list.iter().map(|n| string(n)).collect());
        let strategy = match &approval.strategy {
            ir::ApprovalStrategy::Unison => "unison",
            ir::ApprovalStrategy::Majority => "majority",
            ir::ApprovalStrategy::Quorum(_) => "quorum",
            ir::ApprovalStrategy::First => "first",
            ir::ApprovalStrategy::Custom(name) => name,
        };
        let payload = obj([
            ("transition", string(&t.name)),
            ("users", names(&approval.users)),
            ("roles", names(&approval.roles)),
            ("strategy", string(strategy)),
        ]);
        let before = obj([("pending_approval", Json::Null)]);
        let after = obj([("pending_approval", string(&t.name))]);
        self.record(events::APPROVAL_REQUESTED, before, after, actor, payload.clone());
        self.emit(events::APPROVAL_REQUESTED, payload);
    }

    /// Drops a pending approval whose transition no longer applies where it was requested.
    fn drop_stale_approval(&mut self) {
        let Some(pending) = &self.state.pending_approval else { return };
        let t = self.def.transition(pending.transition);
        let valid = self.state.status == InstanceStatus::Active
            && match pending.branch {
                None => t.from.contains(&self.state.stage),
                Some(branch) => self.state.tokens.iter().any(|token| {
                    token.branch == branch
                        && token.status == TokenStatus::Active
                        && token.stage.is_some_and(|s| t.from.contains(&s))
                }),
            };
        if !valid {
            self.state.pending_approval = None;
            let before = obj([("pending_approval", string(&t.name))]);
            let after = obj([("pending_approval", Json::Null)]);
            self.record(
                events::APPROVAL_CANCELLED,
                before,
                after,
                &ENGINE_ACTOR,
                obj([("transition", string(&t.name))]),
            );
        }
    }

    // ----- gateways -----------------------------------------------------------------------------

    /// The branches a fork starts: all of a parallel gateway, those whose condition holds of an
    /// inclusive one (at least one).
    fn branches(&self, g: &Gateway, actor: &Actor) -> Result<Vec<usize>, MachineError> {
        if g.kind == GatewayKind::Parallel {
            return Ok((0..g.branches.len()).collect());
        }
        let ctx = self.context(self.state.stage, actor);
        let mut started = Vec::new();
        for (i, branch) in g.branches.iter().enumerate() {
            let runs = match &branch.condition {
                None => true,
                Some(c) => evaluate_condition(&c.expr, &ctx)
                    .map_err(|source| MachineError::Evaluation { expression: c.source.clone(), source })?,
            };
            if runs {
                started.push(i);
            }
        }
        if started.is_empty() {
            return Err(MachineError::NoBranchApplies { gateway: g.name.clone() });
        }
        Ok(started)
    }

    /// Forks: one token per started branch, the fork's and branches' actions, then a join if no
    /// branch has anything left to do.
    fn start_branches(&mut self, id: GatewayId, branches: &[usize], actor: &Actor) {
        let def = self.def;
        let g = def.gateway(id);
        for &b in branches {
            let branch = &g.branches[b];
            // `set_field` and `assign` actions are applied at once, so their branch is done as
            // soon as it starts.
            let inline = branch.stage.is_none()
                && branch.action.is_some_and(|a| {
                    matches!(def.action(a).kind, ActionKind::SetField { .. } | ActionKind::Assign { .. })
                });
            let done = branch.stage == Some(g.join) || inline;
            let status = if done { TokenStatus::Completed } else { TokenStatus::Active };
            self.state.tokens.push(Token {
                gateway: id,
                branch: b,
                stage: branch.stage,
                status,
                entered_at: self.now,
            });
            if let (Some(stage), false) = (branch.stage, done) {
                self.schedule_stage_timers(stage);
            }
        }
        let mut changes = self.run_actions(&g.actions, None, || obj([("gateway", string(&g.name))]));
        for &b in branches {
            if let Some(action) = g.branches[b].action {
                let payload = self.branch_payload(id, b);
                changes.extend(self.run_actions(&[action], Some((id, b)), || payload.clone()));
            }
        }
        let names = Json::Array(branches.iter().map(|&b| string(&g.branches[b].name)).collect());
        let stage = self.stage_json(self.state.stage);
        let (mut before, mut after) =
            (obj([("stage", stage.clone())]), obj([("stage", stage), ("branches", names.clone())]));
        if !changes.is_empty() {
            let (data_before, data_after) = data_maps(&changes);
            insert(&mut before, "data", data_before);
            insert(&mut after, "data", data_after);
        }
        let payload = obj([("gateway", string(&g.name)), ("branches", names)]);
        self.record(events::GATEWAY_FORKED, before, after, actor, payload.clone());
        self.emit(events::GATEWAY_FORKED, payload);
        self.try_join(actor);
    }

    fn complete_token(&mut self, index: usize, actor: &Actor) {
        let Some(token) = self.state.tokens.get_mut(index) else { return };
        token.status = TokenStatus::Completed;
        let (gateway, branch) = (token.gateway, token.branch);
        let payload = self.branch_payload(gateway, branch);
        self.record(events::BRANCH_COMPLETED, Json::Null, Json::Null, actor, payload.clone());
        self.emit(events::BRANCH_COMPLETED, payload);
    }

    /// Enters the join stage once every token is completed.
    fn try_join(&mut self, actor: &Actor) {
        let Some(first) = self.state.tokens.first() else { return };
        if self.state.tokens.iter().any(|t| t.status != TokenStatus::Completed) {
            return;
        }
        let g = self.def.gateway(first.gateway);
        let branches =
            Json::Array(self.state.tokens.iter().map(|t| string(&g.branches[t.branch].name)).collect());
        self.state.tokens.clear();
        let fork = self.state.stage;
        self.cancel_stage_timers(fork);
        let before = obj([("stage", self.stage_json(fork))]);
        let after = obj([("stage", self.stage_json(g.join))]);
        let payload = obj([("gateway", string(&g.name)), ("branches", branches)]);
        self.record(events::GATEWAY_JOINED, before, after, actor, payload.clone());
        self.emit(events::GATEWAY_JOINED, payload);
        self.enter_main(g.join);
    }

    /// The index of the active token of `branch` (of `gateway`, if given).
    fn active_token(&self, gateway: Option<GatewayId>, branch: usize) -> Option<usize> {
        self.state.tokens.iter().position(|t| {
            t.branch == branch && t.status == TokenStatus::Active && gateway.is_none_or(|g| t.gateway == g)
        })
    }

    fn token_gateway(&self) -> Option<GatewayId> {
        self.state.tokens.first().map(|t| t.gateway)
    }

    fn branch_payload(&self, gateway: GatewayId, branch: usize) -> Json {
        let g = self.def.gateway(gateway);
        let name = g.branches.get(branch).map_or(Json::Null, |b| string(&b.name));
        obj([("gateway", string(&g.name)), ("branch", name)])
    }

    // ----- automatic transitions ----------------------------------------------------------------

    /// Takes automatic steps until none applies, at most [`MAX_AUTO_STEPS`].
    fn settle(&mut self) -> Result<(), MachineError> {
        let mut taken = 0;
        loop {
            self.drop_stale_approval();
            if self.state.status != InstanceStatus::Active {
                return Ok(());
            }
            let Some(next) = self.next_auto() else { return Ok(()) };
            if taken == MAX_AUTO_STEPS {
                let skip = self.auto_path.len().saturating_sub(8);
                let path = self.auto_path[skip..].iter().map(|s| (*s).to_owned()).collect();
                return Err(MachineError::AutoTransitionLimit { limit: MAX_AUTO_STEPS, path });
            }
            taken += 1;
            match next {
                Auto::Transition(id, target) => {
                    self.auto_path.push(&self.def.transition(id).name);
                    if self.def.transition(id).approval.is_some() {
                        self.request_approval(id, target, &ENGINE_ACTOR);
                    } else {
                        self.apply(id, target, &ENGINE_ACTOR);
                    }
                }
                Auto::Fork(id, branches) => {
                    self.auto_path.push(&self.def.gateway(id).name);
                    self.start_branches(id, &branches, &ENGINE_ACTOR);
                }
            }
        }
    }

    /// The first automatic transition (in declaration order) or gateway that applies. While a
    /// gateway runs, only the tokens move automatically.
    fn next_auto(&mut self) -> Option<Auto> {
        let def = self.def;
        if self.state.tokens.is_empty() {
            let stage = self.state.stage;
            if let Some(id) = self.first_auto_transition(stage) {
                return Some(Auto::Transition(id, Target::Main));
            }
            for &id in &def.stage(stage).forks {
                let g = def.gateway(id);
                if g.trigger != Trigger::Auto || g.entity != self.state.entity {
                    continue;
                }
                if self.auto_admissible(&g.name, &g.guards, g.condition.as_ref(), stage) {
                    match self.branches(g, &ENGINE_ACTOR) {
                        Ok(branches) => return Some(Auto::Fork(id, branches)),
                        Err(MachineError::NoBranchApplies { .. }) => {}
                        Err(e) => self.refuse(&g.name, &e),
                    }
                }
            }
            return None;
        }
        for i in 0..self.state.tokens.len() {
            let token = &self.state.tokens[i];
            if token.status != TokenStatus::Active {
                continue;
            }
            if let Some(stage) = token.stage
                && let Some(id) = self.first_auto_transition(stage)
            {
                return Some(Auto::Transition(id, Target::Branch(i)));
            }
        }
        None
    }

    fn first_auto_transition(&mut self, stage: StageId) -> Option<TransitionId> {
        let def = self.def;
        let outgoing = &def.stage(stage).outgoing;
        let is_auto = |id: &TransitionId| def.transition(*id).trigger == Trigger::Auto;
        if !outgoing.iter().any(is_auto) {
            return None;
        }
        // `"*"` transitions are listed after the others; declaration order is id order.
        let mut candidates: Vec<TransitionId> = outgoing.iter().copied().filter(is_auto).collect();
        candidates.sort_unstable();
        candidates.into_iter().find(|&id| {
            let t = def.transition(id);
            if t.entity != self.state.entity {
                return false;
            }
            if t.approval.is_some() {
                // One approval at a time; an unregistered strategy is reported, not ignored.
                if self.state.pending_approval.is_some() {
                    return false;
                }
                if let Err(e) = self.check_strategy(id) {
                    self.refuse(&t.name, &e);
                    return false;
                }
            }
            self.auto_admissible(&t.name, &t.guards, t.condition.as_ref(), stage)
        })
    }

    /// Whether an automatic transition applies for the system actor. Failing to evaluate is not
    /// "does not apply": it is recorded once per command.
    fn auto_admissible(
        &mut self,
        name: &'m str,
        guards: &[Guard],
        condition: Option<&Condition>,
        stage: StageId,
    ) -> bool {
        match self.admissible(name, guards, condition, stage, &ENGINE_ACTOR) {
            Ok(()) => true,
            Err(MachineError::GuardRefused { .. } | MachineError::ConditionFalse { .. }) => false,
            Err(e) => {
                self.refuse(name, &e);
                false
            }
        }
    }

    fn refuse(&mut self, name: &'m str, error: &MachineError) {
        if self.refused.contains(&name) {
            return;
        }
        self.refused.push(name);
        let payload = obj([("transition", string(name)), ("error", string(&error.to_string()))]);
        self.record(events::AUTO_TRANSITION_REFUSED, Json::Null, Json::Null, &ENGINE_ACTOR, payload);
    }

    // ----- checks -------------------------------------------------------------------------------

    fn same_entity(&self, name: &str, entity: EntityId) -> Result<(), MachineError> {
        if entity == self.state.entity {
            return Ok(());
        }
        Err(MachineError::WrongEntity {
            transition: name.to_owned(),
            entity: self.def.entity(self.state.entity).name.clone(),
            expected: self.def.entity(entity).name.clone(),
        })
    }

    fn wrong_stage(&self, name: &str, from: &[StageId]) -> MachineError {
        MachineError::WrongStage {
            transition: name.to_owned(),
            stage: self.def.stage(self.state.stage).name.clone(),
            expected: from.iter().map(|&s| self.def.stage(s).name.clone()).collect(),
        }
    }

    /// The main stage if `from` lists it, else the first active token whose stage it lists.
    fn target(&self, from: &[StageId]) -> Option<Target> {
        if from.contains(&self.state.stage) {
            return Some(Target::Main);
        }
        self.state
            .tokens
            .iter()
            .position(|t| t.status == TokenStatus::Active && t.stage.is_some_and(|s| from.contains(&s)))
            .map(Target::Branch)
    }

    fn stage_of(&self, target: Target) -> StageId {
        match target {
            Target::Main => self.state.stage,
            Target::Branch(i) => self.state.tokens.get(i).and_then(|t| t.stage).unwrap_or(self.state.stage),
        }
    }

    fn context<'a>(&'a self, stage: StageId, actor: &'a Actor) -> Context<'a> {
        Context {
            data: &self.state.data,
            stage: &self.def.stage(stage).name,
            entity: &self.def.entity(self.state.entity).name,
            actor: Some(actor),
            now: self.now,
        }
    }

    /// Guards in order, then the condition.
    fn admissible(
        &self,
        name: &str,
        guards: &[Guard],
        condition: Option<&Condition>,
        stage: StageId,
        actor: &Actor,
    ) -> Result<(), MachineError> {
        if guards.is_empty() && condition.is_none() {
            return Ok(());
        }
        let ctx = self.context(stage, actor);
        for guard in guards {
            self.check_guard(guard, &ctx, actor)?;
        }
        if let Some(c) = condition {
            let holds = evaluate_condition(&c.expr, &ctx)
                .map_err(|source| MachineError::Evaluation { expression: c.source.clone(), source })?;
            if !holds {
                return Err(MachineError::ConditionFalse {
                    transition: name.to_owned(),
                    condition: c.source.clone(),
                });
            }
        }
        Ok(())
    }

    fn check_guard(&self, guard: &Guard, ctx: &Context<'_>, actor: &Actor) -> Result<(), MachineError> {
        let refused = |guard: String, message: &Option<String>| MachineError::GuardRefused {
            guard,
            message: message.clone(),
        };
        match guard {
            Guard::Expression { condition, message } => {
                let holds = evaluate_condition(&condition.expr, ctx).map_err(|source| {
                    MachineError::Evaluation { expression: condition.source.clone(), source }
                })?;
                if !holds {
                    return Err(refused(condition.source.clone(), message));
                }
            }
            Guard::Role { role, message } => {
                if !actor.roles.contains(role) {
                    return Err(refused(format!("role_check({role})"), message));
                }
            }
            Guard::Permission { permission, message } => {
                if !actor.permissions.contains(permission) {
                    return Err(refused(format!("permission_check({permission})"), message));
                }
            }
            Guard::Custom { name, config, message } => {
                let evaluator = self
                    .m
                    .guards
                    .get(name)
                    .ok_or_else(|| MachineError::UnknownGuard { name: name.clone() })?;
                if !evaluator.allows(config.as_ref(), ctx) {
                    return Err(refused(format!("custom({name})"), message));
                }
            }
        }
        Ok(())
    }

    /// Refuses an approval whose custom strategy is not registered, before asking anyone.
    fn check_strategy(&self, id: TransitionId) -> Result<(), MachineError> {
        match self.def.transition(id).approval.as_ref().map(|a| &a.strategy) {
            Some(ir::ApprovalStrategy::Custom(name)) if !self.m.strategies.contains_key(name) => {
                Err(MachineError::UnknownStrategy { name: name.clone() })
            }
            _ => Ok(()),
        }
    }

    fn decide(
        &self,
        approval: &ir::Approval,
        assignees: usize,
        responses: &[ApprovalResponse],
    ) -> Result<Decision, MachineError> {
        if let ir::ApprovalStrategy::Custom(name) = &approval.strategy {
            let strategy = self
                .m
                .strategies
                .get(name)
                .ok_or_else(|| MachineError::UnknownStrategy { name: name.clone() })?;
            return Ok(strategy.decide(assignees, responses));
        }
        Ok(decide_builtin(&approval.strategy, assignees, responses).unwrap_or(Decision::Pending))
    }

    // ----- actions ------------------------------------------------------------------------------

    /// Enqueues `actions` as one group in declared order; applies `set_field` in place. Runs are
    /// tracked when their outcome matters: a branch waits for it, or the group has compensations.
    fn run_actions(
        &mut self,
        actions: &[ActionId],
        branch: Option<(GatewayId, usize)>,
        cause: impl Fn() -> Json,
    ) -> Vec<Change> {
        if actions.is_empty() {
            return Vec::new();
        }
        let def = self.def;
        let tracked = branch.is_some() || actions.iter().any(|&a| def.action(a).compensation.is_some());
        let mut changes = Vec::new();
        let mut group = None;
        for &id in actions {
            let run = RunId { step: self.state.version, seq: self.seq };
            self.seq += 1;
            let group = *group.get_or_insert(run);
            let action = def.action(id);
            let status = if let ActionKind::SetField { field, value } = &action.kind {
                changes.push(self.set_field(*field, value));
                RunStatus::Succeeded
            } else if let ActionKind::Assign { to } = &action.kind {
                // The engine assigns, in the same transaction; nothing for the host to do.
                self.request_action_assignment(id, to);
                RunStatus::Succeeded
            } else {
                self.outbox.push(OutboxItem {
                    kind: OutboxKind::Action,
                    name: Cow::Owned(action.name.clone()),
                    run: tracked.then_some(run),
                    payload: cause(),
                });
                RunStatus::Pending
            };
            if tracked {
                self.state.runs.push(ActionRun { id: run, group, action: id, branch, status });
            }
        }
        if let Some(group) = group {
            self.prune(group);
        }
        changes
    }

    /// Enqueues (or applies, for `set_field`) the compensation `undo` of `run`.
    fn compensate(&mut self, undo: ActionId, run: &ActionRun, reason: &str) -> Option<Change> {
        let action = self.def.action(undo);
        if let ActionKind::SetField { field, value } = &action.kind {
            return Some(self.set_field(*field, value));
        }
        let payload = obj([
            ("compensates", string(&self.def.action(run.action).name)),
            ("run", string(&run.id.to_string())),
            ("reason", string(reason)),
        ]);
        self.outbox.push(OutboxItem {
            kind: OutboxKind::Compensation,
            name: Cow::Owned(action.name.clone()),
            run: None,
            payload,
        });
        None
    }

    fn set_field(&mut self, field: FieldId, value: &ir::Value) -> Change {
        let name = self.def.data.field(field).name.clone();
        let data = Arc::make_mut(&mut self.state.data);
        let before = data.get(field).map_or(Json::Null, value_to_json);
        if value.is_null() {
            data.clear(field);
        } else {
            data.set(field, value.clone());
        }
        Change { name, before, after: value_to_json(value) }
    }

    fn pending_run(&self, run: RunId) -> Result<usize, MachineError> {
        self.state
            .runs
            .iter()
            .position(|r| r.id == run && r.status == RunStatus::Pending)
            .ok_or(MachineError::UnknownRun { run })
    }

    /// Forgets a group once none of its runs is pending: nothing can need compensating any more.
    fn prune(&mut self, group: RunId) {
        let runs = &mut self.state.runs;
        if !runs.iter().any(|r| r.group == group && r.status == RunStatus::Pending) {
            runs.retain(|r| r.group != group);
        }
    }

    // ----- timers -------------------------------------------------------------------------------

    /// Schedules an SLA timer `elapsed` of the SLA's time from now: over its calendar, if any.
    fn schedule_sla(&mut self, kind: TimerKind, sla: &ir::Sla, elapsed: Duration) {
        let due = sla.due(self.now, elapsed);
        self.timers.push(TimerChange::Schedule(Timer { kind, due }));
    }

    fn schedule(&mut self, kind: TimerKind, after: Duration) {
        let delta = TimeDelta::from_std(after).unwrap_or(TimeDelta::MAX);
        let due = self.now.checked_add_signed(delta).unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.timers.push(TimerChange::Schedule(Timer { kind, due }));
    }

    /// The SLA's duration and at-risk time for this instance's data (see [`ir::Sla::timing`]).
    fn sla_timing(&self, sla: &ir::Sla, data: &Record) -> (Duration, Option<Duration>) {
        sla.timing(sla.by.as_ref().and_then(|by| data.get(by.field)))
    }

    /// The entity SLA and the reminders counted back from it, from creation on.
    fn schedule_entity_timers(&mut self) {
        let entity = self.def.entity(self.state.entity);
        let Some(sla) = &entity.sla else { return };
        let (duration, at_risk) = self.sla_timing(sla, &self.state.data);
        if let Some(at_risk) = at_risk {
            self.schedule_sla(TimerKind::SlaAtRisk { stage: None }, sla, at_risk);
        }
        self.schedule_sla(TimerKind::SlaBreach { stage: None }, sla, duration);
        for (index, reminder) in entity.reminders.iter().enumerate() {
            let target = match reminder.target {
                ReminderTarget::SlaBreach => Some(duration),
                ReminderTarget::SlaAtRisk => at_risk,
            };
            if let Some(target) = target {
                // A `before` longer than the time to its target (a compiler warning) fires at once.
                self.schedule_sla(TimerKind::Reminder { index }, sla, sla.ahead_of(target, reminder.before));
            }
        }
    }

    fn cancel_entity_timers(&mut self) {
        let entity = self.def.entity(self.state.entity);
        let Some(sla) = &entity.sla else { return };
        if sla.at_risk.is_some() {
            self.timers.push(TimerChange::Cancel(TimerKind::SlaAtRisk { stage: None }));
        }
        self.timers.push(TimerChange::Cancel(TimerKind::SlaBreach { stage: None }));
        for index in 0..entity.reminders.len() {
            self.timers.push(TimerChange::Cancel(TimerKind::Reminder { index }));
        }
    }

    /// The stage's SLA and the entity's escalations, counted from entering `stage`.
    fn schedule_stage_timers(&mut self, stage: StageId) {
        let def = self.def;
        if let Some(sla) = &def.stage(stage).sla {
            let (duration, at_risk) = self.sla_timing(sla, &self.state.data);
            if let Some(at_risk) = at_risk {
                self.schedule_sla(TimerKind::SlaAtRisk { stage: Some(stage) }, sla, at_risk);
            }
            self.schedule_sla(TimerKind::SlaBreach { stage: Some(stage) }, sla, duration);
        }
        for (index, escalation) in def.entity(self.state.entity).escalations.iter().enumerate() {
            self.schedule(TimerKind::Escalation { index, stage }, escalation.after);
        }
        if self.m.rechecks(stage) {
            self.schedule(TimerKind::Recheck { stage }, RECHECK_EVERY);
        }
    }

    /// Without an entity SLA, reminders count back from the SLA of the main stage entered (if it
    /// has one), restarting in every stage that has one.
    fn schedule_stage_reminders(&mut self, stage: StageId) {
        let def = self.def;
        let entity = def.entity(self.state.entity);
        let (None, Some(sla)) = (&entity.sla, &def.stage(stage).sla) else { return };
        let (duration, at_risk) = self.sla_timing(sla, &self.state.data);
        for (index, reminder) in entity.reminders.iter().enumerate() {
            let target = match reminder.target {
                ReminderTarget::SlaBreach => Some(duration),
                ReminderTarget::SlaAtRisk => at_risk,
            };
            if let Some(target) = target {
                self.schedule_sla(TimerKind::Reminder { index }, sla, sla.ahead_of(target, reminder.before));
            }
        }
    }

    /// Recomputes — does not restart — the SLA clocks that ran before this command when the
    /// data choosing their duration changed: each keeps its start and gets the due times of the
    /// new duration. A clock already breached stays breached; an at-risk time or reminder already
    /// past is not repeated. Branch tokens' stage SLAs keep their first duration.
    fn retime_slas(&mut self) {
        if self.state.status != InstanceStatus::Active || Arc::ptr_eq(&self.initial_data, &self.state.data) {
            return;
        }
        let def = self.def;
        let entity = def.entity(self.state.entity);
        if let Some(sla) = &entity.sla {
            self.retime(sla, None, self.state.started_at, true);
        }
        let stage = self.state.stage;
        if let Some(sla) = &def.stage(stage).sla
            && self.state.tokens.is_empty()
        {
            self.retime(sla, Some(stage), self.state.stage_entered_at, entity.sla.is_none());
        }
    }

    /// [`Exec::retime_slas`] for one clock started at `start`; `reminders`: whether the entity's
    /// reminders count back from it.
    fn retime(&mut self, sla: &'m ir::Sla, stage: Option<StageId>, start: DateTime<Utc>, reminders: bool) {
        // Started in this command: scheduled with the current data already.
        if sla.by.is_none() || start >= self.now {
            return;
        }
        let (old_duration, old_at_risk) = self.sla_timing(sla, &self.initial_data);
        let (duration, at_risk) = self.sla_timing(sla, &self.state.data);
        if (old_duration, old_at_risk) == (duration, at_risk) || sla.due(start, old_duration) <= self.now {
            return;
        }
        let now = self.now;
        let pending = |elapsed: Option<Duration>| elapsed.is_some_and(|e| sla.due(start, e) > now);
        let schedule = |exec: &mut Self, kind: TimerKind, elapsed: Duration| {
            exec.timers.push(TimerChange::Schedule(Timer { kind, due: sla.due(start, elapsed) }));
        };
        if pending(old_at_risk) {
            match at_risk {
                Some(at_risk) => schedule(self, TimerKind::SlaAtRisk { stage }, at_risk),
                None => self.timers.push(TimerChange::Cancel(TimerKind::SlaAtRisk { stage })),
            }
        }
        schedule(self, TimerKind::SlaBreach { stage }, duration);
        if !reminders {
            return;
        }
        let entity = self.def.entity(self.state.entity);
        for (index, reminder) in entity.reminders.iter().enumerate() {
            let target = |(d, r): (Duration, Option<Duration>)| match reminder.target {
                ReminderTarget::SlaBreach => Some(d),
                ReminderTarget::SlaAtRisk => r,
            };
            let old = target((old_duration, old_at_risk)).map(|t| sla.ahead_of(t, reminder.before));
            if !pending(old) {
                continue;
            }
            match target((duration, at_risk)) {
                Some(t) => schedule(self, TimerKind::Reminder { index }, sla.ahead_of(t, reminder.before)),
                None => self.timers.push(TimerChange::Cancel(TimerKind::Reminder { index })),
            }
        }
    }

    fn cancel_stage_timers(&mut self, stage: StageId) {
        let def = self.def;
        let entity = def.entity(self.state.entity);
        // Leaving the main stage stops the reminders counting back from its SLA.
        if stage == self.state.stage && entity.sla.is_none() && def.stage(stage).sla.is_some() {
            for index in 0..entity.reminders.len() {
                self.timers.push(TimerChange::Cancel(TimerKind::Reminder { index }));
            }
        }
        if let Some(sla) = &def.stage(stage).sla {
            if sla.at_risk.is_some() {
                self.timers.push(TimerChange::Cancel(TimerKind::SlaAtRisk { stage: Some(stage) }));
            }
            self.timers.push(TimerChange::Cancel(TimerKind::SlaBreach { stage: Some(stage) }));
        }
        for index in 0..def.entity(self.state.entity).escalations.len() {
            self.timers.push(TimerChange::Cancel(TimerKind::Escalation { index, stage }));
        }
        if self.m.rechecks(stage) {
            self.timers.push(TimerChange::Cancel(TimerKind::Recheck { stage }));
        }
    }

    // ----- records ------------------------------------------------------------------------------

    pub(super) fn record(
        &mut self,
        event: &'static str,
        before: Json,
        after: Json,
        actor: &Actor,
        payload: Json,
    ) {
        self.history.push(HistoryEntry {
            event,
            before,
            after,
            actor: actor.id.clone(),
            at: self.now,
            payload,
        });
    }

    pub(super) fn emit(&mut self, event: impl Into<Cow<'static, str>>, payload: Json) {
        self.outbox.push(OutboxItem { kind: OutboxKind::Event, name: event.into(), run: None, payload });
    }

    /// The domain event `<entity>_<suffix>` (`lead_qualified`, `opportunity_closed`), with the
    /// stage entered.
    fn emit_domain(&mut self, suffix: &str, stage: &str) {
        let entity = &self.def.entity(self.state.entity).name;
        let payload = obj([("entity", string(entity)), ("stage", string(stage))]);
        self.emit(format!("{entity}_{suffix}"), payload);
    }

    fn stage_json(&self, stage: StageId) -> Json {
        string(&self.def.stage(stage).name)
    }
}

/// A JSON string.
pub(super) fn string(text: &str) -> Json {
    Json::String(text.to_owned())
}

/// A JSON object of `entries`, in order.
pub(super) fn obj<const N: usize>(entries: [(&str, Json); N]) -> Json {
    let mut map = Map::with_capacity(N);
    for (key, value) in entries {
        map.insert(key.to_owned(), value);
    }
    Json::Object(map)
}

fn insert(object: &mut Json, key: &str, value: Json) {
    if let Json::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}

/// The changed fields before and after, as two objects.
fn data_maps(changes: &[Change]) -> (Json, Json) {
    let before = changes.iter().map(|c| (c.name.clone(), c.before.clone())).collect();
    let after = changes.iter().map(|c| (c.name.clone(), c.after.clone())).collect();
    (Json::Object(before), Json::Object(after))
}

/// `{"data": before}` and `{"data": after}` of the changed fields; `null`s when none changed.
fn with_data(changes: &[Change]) -> (Json, Json) {
    if changes.is_empty() {
        return (Json::Null, Json::Null);
    }
    let (before, after) = data_maps(changes);
    (obj([("data", before)]), obj([("data", after)]))
}
