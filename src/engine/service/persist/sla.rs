//! SLA clocks (`crm_sla`) and escalation records (`crm_escalations`) from a step.
//!
//! The machine keeps SLAs as timers; the rows follow them. Scheduling a breach timer starts a
//! clock; the at-risk and breach timers firing (their history entries) mark it; cancelling the
//! breach timer (leaving the stage, or the entity reaching a terminal stage) stops it, `met` when
//! it stopped before its breach time and `breached` otherwise.
//!
//! A clock's id is derived from the instance, its scope and the instant it started, all of which
//! the loaded state knows again later (the instance's start, the main stage's entry, or the entry
//! of the branch token standing in the stage), so marking a clock needs no extra read. A stage
//! passed through within one command starts no clock.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::Loaded;
use crate::engine::machine::{Step, TimerChange, TimerKind, TokenStatus, events};
use crate::ir::{ActionKind, Definition, EntityId, Sla, StageId};
use crate::store::{NewEscalation, SlaRow, SlaStatus, SlaWrite, new_id};

/// The SLA and escalation rows `step` writes for `instance`, `before` being its loaded state
/// (`None` on creation).
pub(super) fn writes(
    def: &Definition,
    instance: &str,
    before: Option<&Loaded>,
    step: &Step,
    now: DateTime<Utc>,
) -> (Vec<SlaWrite>, Vec<NewEscalation>) {
    let entity = step.state.entity;
    let clock = Clock { def, entity, instance, before };
    let mut sla = Vec::new();
    let mut escalations = Vec::new();

    for h in &step.history {
        let stage =
            || h.payload.get("stage").and_then(Json::as_str).and_then(|name| def.stage_named(entity, name));
        let status = match h.event {
            events::SLA_AT_RISK => SlaStatus::AtRisk,
            events::SLA_BREACHED => SlaStatus::Breached,
            events::ESCALATED => {
                escalations.push(escalation(def, before, &h.payload));
                continue;
            }
            _ => continue,
        };
        let stage = stage();
        if let Some(id) = clock.running(stage) {
            sla.push(SlaWrite::Set { id, status, stopped_at: None });
        }
    }

    // The SLA's duration and at-risk time for the data as the step leaves it.
    let timing = |rule: &Sla| rule.timing(rule.by.as_ref().and_then(|by| step.state.data.get(by.field)));
    // Clocks started by this step, by scope, with the index of their `Start`.
    let mut started: Vec<(Option<StageId>, usize)> = Vec::new();
    // Scopes whose breach timer this step cancelled: a schedule after that is a new clock.
    let mut stopped: Vec<Option<StageId>> = Vec::new();
    for change in &step.timers {
        match change {
            TimerChange::Schedule(timer) => {
                let TimerKind::SlaBreach { stage } = timer.kind else { continue };
                let Some(rule) = clock.rule(stage) else { continue };
                let (duration, at_risk) = timing(rule);
                // A running clock rescheduled without being stopped: its duration was recomputed
                // (data chose another); it keeps its start.
                if !stopped.contains(&stage)
                    && !started.iter().any(|(s, _)| *s == stage)
                    && let (Some(id), Some(since)) = (clock.running(stage), clock.started(stage))
                {
                    sla.push(SlaWrite::Retime {
                        id,
                        duration_minutes: duration.as_secs() / 60,
                        at_risk_at: at_risk.map(|d| rule.due(since, d)),
                        breach_at: timer.due,
                    });
                    continue;
                }
                started.retain(|(s, _)| *s != stage);
                started.push((stage, sla.len()));
                sla.push(SlaWrite::Start {
                    id: clock.id(stage, now),
                    scope: clock.scope(stage),
                    duration_minutes: duration.as_secs() / 60,
                    started_at: now,
                    at_risk_at: at_risk.map(|d| rule.due(now, d)),
                    breach_at: timer.due,
                });
            }
            TimerChange::Cancel(TimerKind::SlaBreach { stage }) => {
                stopped.push(*stage);
                if let Some(i) = started.iter().position(|(s, _)| s == stage) {
                    // Entered and left within one command: the clock never ran.
                    let (_, index) = started.remove(i);
                    sla.remove(index);
                    for (_, later) in &mut started {
                        if *later > index {
                            *later -= 1;
                        }
                    }
                    continue;
                }
                let (Some(rule), Some(since)) = (clock.rule(*stage), clock.started(*stage)) else { continue };
                let status =
                    if now < rule.due(since, timing(rule).0) { SlaStatus::Met } else { SlaStatus::Breached };
                sla.push(SlaWrite::Set { id: clock.id(*stage, since), status, stopped_at: Some(now) });
            }
            TimerChange::Cancel(_) => {}
        }
    }
    (sla, escalations)
}

/// Whether the clock running over `stage` (the entity's for `None`) in `loaded` has breached,
/// by its row among `clocks` (the instance's `crm_sla` rows). SLA status only moves forward, so
/// an at-risk timer that runs after the breach has nothing to record.
pub(in crate::engine::service) fn breached(
    def: &Definition,
    loaded: &Loaded,
    stage: Option<StageId>,
    clocks: &[SlaRow],
) -> bool {
    let clock = Clock { def, entity: loaded.state.entity, instance: &loaded.row.id, before: Some(loaded) };
    clock
        .running(stage)
        .is_some_and(|id| clocks.iter().any(|c| c.id == id && c.status == SlaStatus::Breached))
}

/// What identifies the clocks of one instance.
struct Clock<'a> {
    def: &'a Definition,
    entity: EntityId,
    instance: &'a str,
    before: Option<&'a Loaded>,
}

impl Clock<'_> {
    /// The SLA measured over the stage, or over the entity for `None`.
    fn rule(&self, stage: Option<StageId>) -> Option<&Sla> {
        match stage {
            Some(s) => self.def.stage(s).sla.as_ref(),
            None => self.def.entity(self.entity).sla.as_ref(),
        }
    }

    /// `crm_sla.scope`: the stage's or the entity's name.
    fn scope(&self, stage: Option<StageId>) -> String {
        match stage {
            Some(s) => self.def.stage(s).name.clone(),
            None => self.def.entity(self.entity).name.clone(),
        }
    }

    /// The id of the clock of `stage` started at `since`.
    fn id(&self, stage: Option<StageId>, since: DateTime<Utc>) -> String {
        let kind = if stage.is_some() { "stage" } else { "entity" };
        format!("{}/sla/{kind}:{}/{}", self.instance, self.scope(stage), since.timestamp_micros())
    }

    /// When the clock of `stage` started, as the loaded state knows: the instance's creation for
    /// the entity SLA, the main stage's entry for a stage SLA, or the entry of the active branch
    /// token standing in it.
    fn started(&self, stage: Option<StageId>) -> Option<DateTime<Utc>> {
        let before = self.before?;
        match stage {
            None => Some(before.row.started_at),
            Some(s) if before.state.stage == s => Some(before.state.stage_entered_at),
            Some(s) => before
                .state
                .tokens
                .iter()
                .find(|t| t.status == TokenStatus::Active && t.stage == Some(s))
                .map(|t| t.entered_at),
        }
    }

    /// The id of the clock running over `stage` before this step.
    fn running(&self, stage: Option<StageId>) -> Option<String> {
        self.rule(stage)?;
        Some(self.id(stage, self.started(stage)?))
    }
}

/// The record of an escalation whose history payload is `payload` (stage, level, action): taken
/// from the current assignee, given to the first candidate of an `assign` action.
fn escalation(def: &Definition, before: Option<&Loaded>, payload: &Json) -> NewEscalation {
    let text = |key: &str| payload.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
    let (stage, action) = (text("stage"), text("action"));
    let level = payload.get("level").and_then(Json::as_u64).and_then(|l| u32::try_from(l).ok()).unwrap_or(1);
    let to_user_id = def.action_named(&action).and_then(|a| match &def.action(a).kind {
        ActionKind::Assign { to } => to.first().cloned(),
        _ => None,
    });
    NewEscalation {
        id: new_id(),
        level: level.max(1),
        from_user_id: before.and_then(|b| b.state.assignee.clone()),
        to_user_id,
        reason: format!("level {level}: still in `{stage}`, ran `{action}`"),
    }
}
