//! Timers on the engine: claim what is due, run [`Machine::timer_due`](crate::engine::machine::Machine::timer_due)
//! for each in its own transaction, and mark it fired in that same transaction.
//!
//! A claim is a lease (`due_timers`): a worker that dies mid-pass leaves its timers to be claimed
//! again when the lease ends, and the optimistic lock makes a timer that raced a user's command
//! retry rather than apply twice. A timer that no longer applies (its stage was left, the instance
//! completed) or cannot run (its stored kind is unknown, its escalation condition cannot be
//! evaluated) is marked processed and reported, so it never blocks the queue.

use std::time::Duration;

use super::{Engine, EngineError, persist};
use crate::engine::machine::{ENGINE_ACTOR, MachineError, TimerKind};
use crate::store::{InstanceWrite, Store, TimerRow, TimerWrite};

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
    /// each in its own transaction. A database failure ends the pass; what ran stays committed.
    pub async fn run_due_timers(
        &self,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<TimerReport, EngineError> {
        let due = self.store.due_timers(self.now(), limit, worker, lease).await?;
        let mut report = TimerReport { claimed: due.len(), ..TimerReport::default() };
        for timer in &due {
            match self.process_timer(timer).await? {
                TimerOutcome::Fired => report.fired += 1,
                TimerOutcome::Skipped(reason) => report.skipped.push(format!("{}: {reason}", timer.id)),
                TimerOutcome::Retry => report.retried += 1,
            }
        }
        Ok(report)
    }

    /// Runs one claimed timer now: its step and its `fired` mark in one transaction, or a
    /// `processed` mark alone when it no longer applies. `Err` only when the database fails.
    pub async fn process_timer(&self, timer: &TimerRow) -> Result<TimerOutcome, EngineError> {
        let outcome = match self.fire_timer(timer).await {
            Ok(()) => return Ok(TimerOutcome::Fired),
            Err(EngineError::Conflict { .. }) => return Ok(TimerOutcome::Retry),
            Err(EngineError::Store(error)) => return Err(EngineError::Store(error)),
            Err(EngineError::Machine(MachineError::StaleTimer { .. })) => {
                TimerOutcome::Skipped("no longer applies".to_owned())
            }
            Err(other) => TimerOutcome::Skipped(other.to_string()),
        };
        self.store.mark_timer_processed(&timer.tenant, &timer.id, self.now()).await?;
        Ok(outcome)
    }

    async fn fire_timer(&self, timer: &TimerRow) -> Result<(), EngineError> {
        let (machine, loaded) = self.load(&timer.tenant, &timer.instance_id).await?;
        let kind =
            TimerKind::decode(machine.definition(), loaded.state.entity, &timer.kind).ok_or_else(|| {
                EngineError::Inconsistent {
                    id: timer.instance_id.clone(),
                    detail: format!("unknown timer kind `{}`", timer.kind),
                }
            })?;
        let now = self.now();
        let step = machine.timer_due(&loaded.state, kind, now)?;
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
        Ok(())
    }
}
