//! Delivering the outbox: domain events to in-process subscribers, actions to a pluggable handler.
//!
//! Every command writes its events and actions to `crm_outbox` in its own transaction; nothing is
//! delivered before that commit. [`Engine::deliver_outbox`] claims due items under a lease and
//! hands them over, so delivery is at least once: a worker that dies after a subscriber saw an
//! event but before marking it done delivers it again later. Subscribers cannot fail (they observe);
//! an action handler can, and a failed action is retried with exponential backoff up to the
//! action's `max_retries`, then dead-lettered (seed REL-005), all through the store's
//! `outbox_failed`. An action a gateway branch or a compensable group waits for carries its run id
//! in the payload: its success or final failure is reported to the instance
//! ([`Engine::action_succeeded`], [`Engine::action_failed`]), so a branch completes when its action
//! succeeds and a failed group compensates. Without a handler, actions fail with "no action handler" and end in the
//! dead-letter state rather than being reported delivered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value as Json;

use super::{Engine, EngineError};
use crate::store::{OutboxFailure, OutboxRow, Store, StoredOutboxKind, TenantId};

/// The retries of an action whose definition cannot be read any more (the seed's default).
const DEFAULT_MAX_RETRIES: u32 = 5;

/// The wait before the first retry; it doubles per failed attempt.
const FIRST_BACKOFF: TimeDelta = TimeDelta::seconds(30);

/// The longest wait between two attempts.
const MAX_BACKOFF: TimeDelta = TimeDelta::hours(1);

/// An outbox item being delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The outbox item id: the same on every attempt, for idempotent receivers.
    pub id: String,
    /// The instance it came from.
    pub instance_id: Option<String>,
    /// Event, action or compensation.
    pub kind: StoredOutboxKind,
    /// The event name (`instance_created`, `transition_completed`, `opportunity_created`, …) or the
    /// action's name in the definition.
    pub name: String,
    /// What happened, or what caused the action.
    pub payload: Json,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it was enqueued (the commit's time).
    pub created_at: DateTime<Utc>,
}

impl From<&OutboxRow> for Delivered {
    fn from(row: &OutboxRow) -> Self {
        Self {
            tenant: row.tenant.clone(),
            id: row.id.clone(),
            instance_id: row.instance_id.clone(),
            kind: row.kind,
            name: row.name.clone(),
            payload: row.payload.clone(),
            attempt: row.attempts + 1,
            created_at: row.created_at,
        }
    }
}

/// Receives domain events after they are committed; at least once, in enqueue order per pass.
pub trait Subscriber: Send + Sync {
    /// Called once per delivery of an event.
    fn on_event(&self, event: &Delivered);
}

impl<F: Fn(&Delivered) + Send + Sync> Subscriber for F {
    fn on_event(&self, event: &Delivered) {
        self(event)
    }
}

/// What an action handler returns: `Err` with a reason retries the action later.
pub type ActionResult<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Carries out actions and compensations (email, webhook, Slack, custom plugins).
pub trait ActionHandler: Send + Sync {
    /// Performs one attempt of `action`; an error is recorded and retried with backoff.
    fn handle<'a>(&'a self, action: &'a Delivered) -> ActionResult<'a>;
}

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Items claimed.
    pub claimed: usize,
    /// Events handed to the subscribers.
    pub events: usize,
    /// Actions and compensations the handler carried out.
    pub actions: usize,
    /// Failed attempts that will be retried.
    pub retried: usize,
    /// Items that exhausted their retries, moved to the dead-letter state (`id: last error`).
    pub dead: Vec<String>,
    /// Tracked action outcomes the instance refused (`id: reason`), e.g. a run reported twice.
    pub unreported: Vec<String>,
}

impl<S: Store> Engine<S> {
    /// Adds a subscriber to the domain events delivered by [`Engine::deliver_outbox`].
    pub fn with_subscriber(mut self, subscriber: impl Subscriber + 'static) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// Uses `handler` to carry out actions and compensations.
    pub fn with_action_handler(mut self, handler: impl ActionHandler + 'static) -> Self {
        self.action_handler = Some(Arc::new(handler));
        self
    }

    /// Claims up to `limit` due outbox items of every tenant for `worker` (held for `lease`) and
    /// delivers them. A database failure ends the pass; what was delivered stays marked.
    pub async fn deliver_outbox(
        &self,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<DeliveryReport, EngineError> {
        let items = self.store.claim_outbox(self.now(), limit, worker, lease).await?;
        let mut report = DeliveryReport { claimed: items.len(), ..DeliveryReport::default() };
        for row in &items {
            let item = Delivered::from(row);
            let outcome = match row.kind {
                StoredOutboxKind::Event => {
                    for subscriber in &self.subscribers {
                        subscriber.on_event(&item);
                    }
                    report.events += 1;
                    Ok(())
                }
                StoredOutboxKind::Action | StoredOutboxKind::Compensation => match &self.action_handler {
                    Some(handler) => handler.handle(&item).await,
                    None => Err("no action handler is registered".to_owned()),
                },
            };
            let now = self.now();
            match outcome {
                Ok(()) => {
                    if row.kind != StoredOutboxKind::Event {
                        report.actions += 1;
                        // Reported before the item is marked done: a crash in between delivers
                        // it again, and a second report of the same run is ignored below.
                        if !self.report_run(row, None, &mut report).await? {
                            // Left claimed: delivered again when the lease ends.
                            report.retried += 1;
                            continue;
                        }
                    }
                    self.store.outbox_done(&row.tenant, &row.id, now).await?;
                }
                Err(error) => {
                    let failed = row.attempts + 1;
                    let dead = failed > self.max_retries(row).await?;
                    if dead && !self.report_run(row, Some(&error), &mut report).await? {
                        report.retried += 1;
                        continue;
                    }
                    let failure = OutboxFailure { next_attempt_at: now + backoff(failed), dead, error };
                    self.store.outbox_failed(&row.tenant, &row.id, now, &failure).await?;
                    if dead {
                        report.dead.push(format!("{}: {}", row.id, failure.error));
                    } else {
                        report.retried += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Tells the instance how a tracked action run ended (its `run` in the payload): success
    /// (`failure: None`) completes the branch waiting for it; a final failure compensates its
    /// group. Untracked actions have no run. A run the instance no longer waits for (reported
    /// already, instance gone) is noted in `report.unreported`. `Ok(false)`: the instance kept
    /// changing under us; the item stays claimed and is delivered again when its lease ends.
    async fn report_run(
        &self,
        row: &OutboxRow,
        failure: Option<&str>,
        report: &mut DeliveryReport,
    ) -> Result<bool, EngineError> {
        let (Some(instance), Some(run)) =
            (&row.instance_id, row.payload.get("run").and_then(Json::as_str).and_then(super::parse_run_id))
        else {
            return Ok(true);
        };
        // Another command may commit between our read and write; each retry reads afresh.
        let mut attempts_left = 3;
        loop {
            let result = match failure {
                None => self.action_succeeded(&row.tenant, instance, run).await,
                Some(reason) => self.action_failed(&row.tenant, instance, run, reason).await,
            };
            match result {
                Ok(_) => return Ok(true),
                Err(EngineError::Conflict { .. }) if attempts_left > 1 => attempts_left -= 1,
                Err(EngineError::Conflict { .. }) => return Ok(false),
                Err(EngineError::Store(error)) => return Err(EngineError::Store(error)),
                Err(other) => {
                    report.unreported.push(format!("{}: {other}", row.id));
                    return Ok(true);
                }
            }
        }
    }

    /// The `max_retries` of the item's action in its instance's pinned definition.
    async fn max_retries(&self, row: &OutboxRow) -> Result<u32, EngineError> {
        let Some(instance) = &row.instance_id else { return Ok(DEFAULT_MAX_RETRIES) };
        let Some(instance) = self.store.load_instance(&row.tenant, instance).await? else {
            return Ok(DEFAULT_MAX_RETRIES);
        };
        let pinned = Some(instance.definition_version);
        let machine = match self.machine(&row.tenant, &instance.definition_id, pinned).await {
            Ok((machine, _)) => machine,
            Err(EngineError::Store(error)) => return Err(EngineError::Store(error)),
            // A definition this build cannot compile any more still gets the default retries.
            Err(_) => return Ok(DEFAULT_MAX_RETRIES),
        };
        let def = machine.definition();
        Ok(def.action_named(&row.name).map_or(DEFAULT_MAX_RETRIES, |a| def.action(a).max_retries))
    }
}

/// The wait after the `failed`-th failed attempt: 30 s, 1 min, 2 min, … up to an hour.
fn backoff(failed: u32) -> TimeDelta {
    let doublings = failed.saturating_sub(1).min(16);
    FIRST_BACKOFF.checked_mul(1 << doublings).map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
}
