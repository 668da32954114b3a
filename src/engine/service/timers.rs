//! Timers on the engine: claim what is due, run [`Machine::timer_due`](crate::engine::machine::Machine::timer_due)
//! for each in its own transaction, and mark it fired in that same transaction.
//!
//! A claim is a lease (`due_timers`): a worker that dies mid-pass leaves its timers to be claimed
//! again when the lease ends, and the optimistic lock makes a timer that raced a user's command
//! retry rather than apply twice. A timer that no longer applies (its stage was left, the instance
//! completed) or cannot run (its stored kind is unknown, its escalation condition cannot be
//! evaluated) is marked processed and reported, so it never blocks the queue.

use std::time::Duration;

use super::{Engine, EngineError, MAX_ATTEMPTS, contention_backoff, persist};
use crate::engine::machine::{ENGINE_ACTOR, MachineError, TimerKind};
use crate::store::{InstanceWrite, Store, StoreError, TimerRow, TimerWrite};

/// What the store calls a timer that is not pending (any more) when it refuses a `fired` mark.
const PENDING_TIMER: &str = "pending timer";

/// What one pass over the due timers did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerReport {
    /// Timers claimed.
    pub claimed: usize,
    /// Timers whose effect was committed.
    pub fired: usize,
    /// Timers marked processed without effect, with why (`timer id: reason`).
    pub skipped: Vec<String>,
    /// Timers left for a later pass (a concurrent change to their instance).
    pub retried: usize,
}

/// What became of one timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerOutcome {
    /// Its step was committed and it is marked fired.
    Fired,
    /// It is marked processed without effect, for this reason.
    Skipped(String),
    /// Its instance changed meanwhile; it stays claimed until the lease ends, then runs again.
    Retry,
}

impl<S: Store> Engine<S> {
    /// Claims up to `limit` due timers of every tenant for `worker` (held for `lease`) and runs
    /// each in its own transaction, several instances at once with [`Engine::with_lanes`]. A
    /// database failure ends the pass; what ran stays committed.
    pub async fn run_due_timers(
        &self,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<TimerReport, EngineError> {
        let due = self.store.due_timers(self.now(), limit, worker, lease).await?;
        let mut report = TimerReport { claimed: due.len(), ..TimerReport::default() };
        let lanes = super::lanes(due, self.lanes, |t| (t.tenant.clone(), t.instance_id.clone()));
        let lanes = lanes.into_iter().map(|lane| async move {
            let mut outcomes = Vec::with_capacity(lane.len());
            for timer in lane {
                let outcome = self.process_timer(&timer).await?;
                outcomes.push((timer.id, outcome));
            }
            Ok::<_, EngineError>(outcomes)
        });
        // Every lane runs to its end even when another fails: what ran stays committed and counted.
        let mut failed = None;
        for lane in super::join_all(lanes.collect()).await {
            match lane {
                Ok(outcomes) => {
                    for (id, outcome) in outcomes {
                        match outcome {
                            TimerOutcome::Fired => report.fired += 1,
                            TimerOutcome::Skipped(reason) => report.skipped.push(format!("{id}: {reason}")),
                            TimerOutcome::Retry => report.retried += 1,
                        }
                    }
                }
                Err(error) => failed = Some(error),
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Runs one claimed timer now: its step and its `fired` mark in one transaction, or a
    /// `processed` mark alone when it no longer applies. A timer whose instance keeps changing is
    /// recomputed on a fresh read (with a jittered pause) up to [`MAX_ATTEMPTS`] times before it
    /// is left for the next claim. A timer that became moot meanwhile (cancelled by a user's
    /// command, fired by another worker, an at-risk mark after its SLA breached) is skipped: no
    /// user action can make this fail. `Err` only when the database fails.
    pub async fn process_timer(&self, timer: &TimerRow) -> Result<TimerOutcome, EngineError> {
        let mut lost = 0;
        let outcome = loop {
            match self.fire_timer(timer).await {
                Ok(None) => return Ok(TimerOutcome::Fired),
                Ok(Some(reason)) => break TimerOutcome::Skipped(reason.to_owned()),
                Err(EngineError::Conflict { .. }) => {
                    lost += 1;
                    if lost >= MAX_ATTEMPTS {
                        return Ok(TimerOutcome::Retry);
                    }
                    tokio::time::sleep(contention_backoff(lost)).await;
                }
                // Its `fired` mark found no pending timer: a command cancelled it, or another
                // worker whose lease outlived ours fired it. Either way nothing is left to do.
                Err(EngineError::Store(StoreError::NotFound { what, id }))
                    if what == PENDING_TIMER && id == timer.id =>
                {
                    return Ok(TimerOutcome::Skipped("cancelled or fired meanwhile".to_owned()));
                }
                Err(EngineError::Store(error)) => return Err(EngineError::Store(error)),
                Err(EngineError::Machine(MachineError::StaleTimer { .. })) => {
                    break TimerOutcome::Skipped("no longer applies".to_owned());
                }
                Err(other) => break TimerOutcome::Skipped(other.to_string()),
            }
        };
        match self.store.mark_timer_processed(&timer.tenant, &timer.id, self.now()).await {
            // Marked by someone else in the meantime: as moot as it gets.
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(outcome),
            Err(error) => Err(error.into()),
        }
    }

    /// Fires `timer` on a fresh read of its instance: `Ok(None)` when its step is committed,
    /// `Ok(Some(why))` when it is moot and only needs marking processed.
    async fn fire_timer(&self, timer: &TimerRow) -> Result<Option<&'static str>, EngineError> {
        let unknown = || EngineError::UnknownInstance { id: timer.instance_id.clone() };
        let mut rows = self.store.load_state(&timer.tenant, &timer.instance_id).await?.ok_or_else(unknown)?;
        let machine = self.pinned_machine(&timer.tenant, &rows.instance).await?;
        let clocks = std::mem::take(&mut rows.sla);
        let loaded = persist::load(&machine, rows)?;
        let kind =
            TimerKind::decode(machine.definition(), loaded.state.entity, &timer.kind).ok_or_else(|| {
                EngineError::Inconsistent {
                    id: timer.instance_id.clone(),
                    detail: format!("unknown timer kind `{}`", timer.kind),
                }
            })?;
        let now = self.now();
        if let TimerKind::SlaAtRisk { stage } = kind
            && persist::sla_breached(machine.definition(), &loaded, stage, &clocks)
        {
            // SLA status only moves forward: several workers, or a retry after a conflict, may
            // run the at-risk timer after the breach timer, and then it has nothing to say.
            return Ok(Some("its SLA has breached already"));
        }
        let mut step = machine.timer_due(&loaded.state, kind, now)?;
        self.choose_assignee(&timer.tenant, &machine, &mut step, now).await?;
        // Nothing happened (a re-check whose conditions still do not hold): only the timers move
        // on, under the version check but without a new version, so nobody's expected version
        // goes stale every hour.
        let changed = !(step.history.is_empty() && step.outbox.is_empty());
        let write = if changed {
            persist::update(&machine, &loaded, &step.state, now)
        } else {
            InstanceWrite::Unchanged { id: timer.instance_id.clone(), expected_version: loaded.row.version }
        };
        let (mut commit, _token_ids) =
            persist::commit(&machine, write, Some(&loaded), step, &ENGINE_ACTOR, &*self.directory, now)?;
        // First: the step may cancel pending timers of this kind, and this one fired.
        commit.timers.insert(0, TimerWrite::Fired { id: timer.id.clone() });
        let committed = self.store.commit(&timer.tenant, commit).await;
        if changed {
            // The kept state (if any) is now a version behind; the optimistic lock would catch
            // it, but dropping it saves the next command a refused write.
            self.forget(&timer.tenant, &timer.instance_id);
        }
        committed?;
        Ok(None)
    }
}
