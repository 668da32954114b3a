//! Delivering the outbox: domain events to in-process subscribers, actions to a pluggable handler.
//!
//! Every command writes its events and actions to `crm_outbox` in its own transaction; nothing is
//! delivered before that commit. [`Engine::deliver_outbox`] claims due items under a lease (each
//! claim with a fresh token) and hands them over, so delivery is at least once: a worker that dies
//! after a receiver saw an item but before recording it delivers it again later, with the same
//! item id for the receiver to deduplicate on. Every attempt is recorded (`crm_outbox_attempts`:
//! time, outcome, latency, HTTP status, error) under the claim's token, so a worker whose lease ran
//! out cannot settle an item another worker holds now.
//!
//! Subscribers cannot fail (they observe); an action handler can. A failed action is retried
//! after an exponential backoff with full jitter and a cap ([`RetryPolicy`]), or when the receiver
//! asked (`Retry-After`), up to the action's `max_retries`; then, or at once for a failure no retry
//! can fix ([`ActionFailure::permanent`]), it is dead-lettered (seed REL-005) until an operator
//! replays or discards it (`crm outbox`). A failed integration never blocks a transition: the
//! instance moved on when the item was enqueued.
//!
//! An action a gateway branch or a compensable group waits for carries its run id in the payload:
//! its success or final failure is reported to the instance ([`Engine::action_succeeded`],
//! [`Engine::action_failed`]), so a branch completes when its action succeeds and a failed group
//! compensates. Without a handler, actions fail with "no action handler" and end in the
//! dead-letter state rather than being reported delivered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value as Json;

use super::{Engine, EngineError};
use crate::ir::{ActionKind, Integrations};
use crate::store::{
    AttemptOutcome, NewAttempt, OutboxRow, Store, StoreError, StoredOutboxKind, TenantId, new_id,
};

/// The retries of an action whose definition cannot be read any more (the seed's default).
const DEFAULT_MAX_RETRIES: u32 = 5;

/// The shortest wait before a retry, so a jittered wait of nearly nothing does not retry in the
/// same pass.
const MIN_BACKOFF: Duration = Duration::from_secs(1);

/// How failed deliveries wait before their next attempt: exponential backoff with "full jitter"
/// (a random wait up to `first × 2^(failures − 1)`, at most `cap`), so items that failed together
/// (an endpoint down) do not come back together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The upper bound of the first wait; it doubles per failed attempt.
    pub first: Duration,
    /// The longest wait between two attempts (also the most a `Retry-After` is honoured for).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { first: Duration::from_secs(30), cap: Duration::from_secs(3600) }
    }
}

impl RetryPolicy {
    /// The wait after the `failed`-th failed attempt (1 for the first failure).
    pub fn delay(&self, failed: u32) -> Duration {
        let ceiling = self.first.saturating_mul(1 << failed.saturating_sub(1).min(20)).min(self.cap);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=micros)).max(MIN_BACKOFF.min(ceiling))
    }
}

/// An outbox item being delivered.
#[derive(Clone, Debug)]
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
    /// For an action or compensation: what the definition declares it does (type and settings),
    /// when its instance's definition can still be read.
    pub action: Option<ActionKind>,
    /// The `integrations` settings of the instance's definition (e-mail, Slack defaults).
    pub integrations: Option<Integrations>,
    /// The definition id of the instance.
    pub definition: Option<String>,
    /// The instance's data document at delivery time (for templates and webhook bodies).
    pub data: Option<Json>,
    /// The instance's stage at delivery time.
    pub stage: Option<String>,
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
            action: None,
            integrations: None,
            definition: None,
            data: None,
            stage: None,
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

/// What one attempt came to, with what the outbox needs to record and schedule it.
pub type AttemptResult<'a> = Pin<Box<dyn Future<Output = Result<ActionSuccess, ActionFailure>> + Send + 'a>>;

/// A successful attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionSuccess {
    /// The receiver's HTTP status, when it answered over HTTP.
    pub http_status: Option<u16>,
}

/// A failed attempt: why, and whether and when to try again. The error is stored and shown to
/// operators, so it never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionFailure {
    /// What went wrong.
    pub error: String,
    /// No retry can fix it (an endpoint gone for good, a refused address, a missing secret):
    /// dead-letter now.
    pub permanent: bool,
    /// The receiver asked to wait this long (`Retry-After` on 429 or 503).
    pub retry_after: Option<Duration>,
    /// The receiver's HTTP status, when it answered over HTTP.
    pub http_status: Option<u16>,
}

impl ActionFailure {
    /// A failure worth retrying (a timeout, a 5xx, a refused connection).
    pub fn retry(error: impl Into<String>) -> Self {
        Self { error: error.into(), permanent: false, retry_after: None, http_status: None }
    }

    /// A failure no retry can fix.
    pub fn permanent(error: impl Into<String>) -> Self {
        Self { permanent: true, ..Self::retry(error) }
    }

    /// With the receiver's HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// With the wait the receiver asked for.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }
}

/// Carries out actions and compensations (email, webhook, Slack, custom plugins).
pub trait ActionHandler: Send + Sync {
    /// Performs one attempt of `action`; an error is recorded and retried with backoff.
    fn handle<'a>(&'a self, action: &'a Delivered) -> ActionResult<'a>;

    /// Performs one attempt and says how it went in detail (HTTP status, `Retry-After`, whether
    /// a retry can help). By default [`handle`](Self::handle), every error retried.
    fn attempt<'a>(&'a self, action: &'a Delivered) -> AttemptResult<'a> {
        Box::pin(async move {
            self.handle(action).await.map(|()| ActionSuccess::default()).map_err(ActionFailure::retry)
        })
    }
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
    /// Items whose outcome was not recorded because this worker's claim had ended meanwhile
    /// (another worker holds them now, or an operator discarded them).
    pub stale: usize,
}

/// What the definition says about an action item, read once per delivery.
struct ActionContext {
    max_retries: u32,
    action: Option<ActionKind>,
    integrations: Option<Integrations>,
    definition: Option<String>,
    data: Option<Json>,
    stage: Option<String>,
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

    /// Uses `policy` for the waits between failed attempts.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Claims up to `limit` due outbox items of every tenant for `worker` (held for `lease`) and
    /// delivers them, recording every attempt. A database failure ends the pass; what was
    /// delivered stays recorded.
    pub async fn deliver_outbox(
        &self,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<DeliveryReport, EngineError> {
        let items = self.store.claim_outbox(self.now(), limit, worker, lease).await?;
        let mut report = DeliveryReport { claimed: items.len(), ..DeliveryReport::default() };
        for row in &items {
            self.deliver_one(worker, row, &mut report).await?;
        }
        Ok(report)
    }

    async fn deliver_one(
        &self,
        worker: &str,
        row: &OutboxRow,
        report: &mut DeliveryReport,
    ) -> Result<(), EngineError> {
        let mut item = Delivered::from(row);
        let started_at = self.now();
        let started = Instant::now();
        let mut max_retries = DEFAULT_MAX_RETRIES;
        let outcome = match row.kind {
            StoredOutboxKind::Event => {
                for subscriber in &self.subscribers {
                    subscriber.on_event(&item);
                }
                report.events += 1;
                Ok(ActionSuccess::default())
            }
            StoredOutboxKind::Action | StoredOutboxKind::Compensation => {
                let context = self.action_context(row).await?;
                max_retries = context.max_retries;
                item.action = context.action;
                item.integrations = context.integrations;
                item.definition = context.definition;
                item.data = context.data;
                item.stage = context.stage;
                match &self.action_handler {
                    Some(handler) => handler.attempt(&item).await,
                    None => Err(ActionFailure::retry("no action handler is registered")),
                }
            }
        };
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let now = self.now();
        let mut attempt = NewAttempt {
            id: new_id(),
            attempt: item.attempt,
            worker: worker.to_owned(),
            started_at,
            latency_us,
            outcome: AttemptOutcome::Delivered,
            http_status: None,
            error: None,
            next_attempt_at: now,
            finished_at: now,
        };
        match outcome {
            Ok(success) => {
                attempt.http_status = success.http_status;
                if row.kind != StoredOutboxKind::Event {
                    report.actions += 1;
                    // Reported before the item is marked done: a crash in between delivers
                    // it again, and a second report of the same run is ignored below.
                    if !self.report_run(row, None, report).await? {
                        // Left claimed: delivered again when the lease ends.
                        report.retried += 1;
                        return Ok(());
                    }
                }
            }
            Err(failure) => {
                let dead = failure.permanent || item.attempt > max_retries;
                if dead && !self.report_run(row, Some(&failure.error), report).await? {
                    report.retried += 1;
                    return Ok(());
                }
                attempt.http_status = failure.http_status;
                attempt.outcome = if dead { AttemptOutcome::Dead } else { AttemptOutcome::Retry };
                let wait = match failure.retry_after {
                    Some(asked) => asked.min(self.retry.cap),
                    None => self.retry.delay(item.attempt),
                };
                attempt.next_attempt_at = after(now, wait);
                if dead {
                    report.dead.push(format!("{}: {}", row.id, failure.error));
                } else {
                    report.retried += 1;
                }
                attempt.error = Some(failure.error);
            }
        }
        let Some(claim) = &row.claim else {
            // Claimed by a build that did not hand out tokens: nothing to check against.
            report.stale += 1;
            return Ok(());
        };
        match self.store.record_attempt(&row.tenant, &row.id, claim, &attempt).await {
            Ok(()) => Ok(()),
            // The claim is no longer ours: whoever holds the item now records its outcome.
            Err(StoreError::NotFound { .. }) => {
                report.stale += 1;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
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
        // The command names no version, so it retries races itself; only a lasting storm of
        // commits on the instance makes it give up, and then the item waits for its lease.
        let result = match failure {
            None => self.action_succeeded(&row.tenant, instance, run).await,
            Some(reason) => self.action_failed(&row.tenant, instance, run, reason).await,
        };
        match result {
            Ok(_) => Ok(true),
            Err(EngineError::Contention { .. } | EngineError::Conflict { .. }) => Ok(false),
            Err(EngineError::Store(error)) => Err(EngineError::Store(error)),
            Err(other) => {
                report.unreported.push(format!("{}: {other}", row.id));
                Ok(true)
            }
        }
    }

    /// The item's action in its instance's pinned definition: `max_retries`, what it does, the
    /// definition's integration settings, and the instance's data and stage now.
    async fn action_context(&self, row: &OutboxRow) -> Result<ActionContext, EngineError> {
        let mut context = ActionContext {
            max_retries: DEFAULT_MAX_RETRIES,
            action: None,
            integrations: None,
            definition: None,
            data: None,
            stage: None,
        };
        let Some(instance) = &row.instance_id else { return Ok(context) };
        let Some(instance) = self.store.load_instance(&row.tenant, instance).await? else {
            return Ok(context);
        };
        context.definition = Some(instance.definition_id.clone());
        context.stage = Some(instance.stage.clone());
        context.data = Some(instance.data.clone());
        let pinned = Some(instance.definition_version);
        let machine = match self.machine(&row.tenant, &instance.definition_id, pinned).await {
            Ok((machine, _)) => machine,
            Err(EngineError::Store(error)) => return Err(EngineError::Store(error)),
            // A definition this build cannot compile any more still gets the default retries.
            Err(_) => return Ok(context),
        };
        let def = machine.definition();
        if let Some(action) = def.action_named(&row.name) {
            let action = def.action(action);
            context.max_retries = action.max_retries;
            context.action = Some(action.kind.clone());
        }
        context.integrations = Some(def.integrations.clone());
        Ok(context)
    }
}

/// `at + wait`, saturating.
fn after(at: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(wait).ok().and_then(|d| at.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
