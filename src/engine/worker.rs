//! The background worker: fires due timers and delivers the outbox, in passes, until told to stop.
//!
//! Every timer and every outbox item is its own transaction under a lease, so any number of
//! workers may run against one database, and stopping one at any moment (even killing it) loses
//! nothing: what it had claimed is claimed again when the lease ends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use nexus_crm::engine::service::Engine;
//! use nexus_crm::engine::worker::{Worker, WorkerConfig};
//! use nexus_crm::store::AnyStore;
//!
//! let engine = Engine::new(AnyStore::open("sqlite:crm.db").await?);
//! let worker = Worker::new(WorkerConfig::default());
//! let pass = worker.run_once(&engine).await?; // everything due now, then return
//! println!("{} timers fired", pass.timers.fired);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use crate::engine::service::{DeliveryReport, Engine, EngineError, TimerReport};
use crate::store::Store;

/// The most batches one [`Worker::run_once`] takes of each queue, so a queue that refills as fast
/// as it drains (timers scheduling due timers) cannot hold a pass forever.
const MAX_BATCHES: usize = 1_000;

/// The longest pause after failed passes.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// How a worker claims and paces its work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The id its claims carry (`locked_by`).
    pub id: String,
    /// How long a claim holds before another worker may take the item.
    pub lease: Duration,
    /// Items claimed per batch.
    pub batch: u32,
    /// The pause between passes when idle.
    pub poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: format!("worker-{}", std::process::id()),
            lease: Duration::from_secs(60),
            batch: 100,
            poll: Duration::from_secs(1),
        }
    }
}

/// What one pass (or a whole run) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// The timers.
    pub timers: TimerReport,
    /// The outbox.
    pub outbox: DeliveryReport,
}

impl Pass {
    /// Whether the pass found anything to do.
    pub fn is_idle(&self) -> bool {
        self.timers.claimed == 0 && self.outbox.claimed == 0
    }

    fn absorb(&mut self, timers: TimerReport, outbox: DeliveryReport) {
        self.timers.claimed += timers.claimed;
        self.timers.fired += timers.fired;
        self.timers.retried += timers.retried;
        self.timers.skipped.extend(timers.skipped);
        self.outbox.claimed += outbox.claimed;
        self.outbox.events += outbox.events;
        self.outbox.actions += outbox.actions;
        self.outbox.retried += outbox.retried;
        self.outbox.dead.extend(outbox.dead);
        self.outbox.unreported.extend(outbox.unreported);
        self.outbox.stale += outbox.stale;
    }
}

impl std::fmt::Display for Pass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, o) = (&self.timers, &self.outbox);
        write!(
            f,
            "timers: {} fired, {} skipped, {} retried; outbox: {} events, {} actions, {} retried, {} dead",
            t.fired,
            t.skipped.len(),
            t.retried,
            o.events,
            o.actions,
            o.retried,
            o.dead.len()
        )?;
        if o.stale > 0 {
            write!(f, ", {} stale", o.stale)?;
        }
        Ok(())
    }
}

/// Runs the timer and outbox queues of an engine.
#[derive(Clone, Debug)]
pub struct Worker {
    config: WorkerConfig,
}

impl Worker {
    /// A worker with `config`.
    pub fn new(config: WorkerConfig) -> Self {
        Self { config }
    }

    /// Processes everything due now: timers first (their steps enqueue events), then the outbox,
    /// batch after batch until both queues have nothing due.
    pub async fn run_once<S: Store>(&self, engine: &Engine<S>) -> Result<Pass, EngineError> {
        let c = &self.config;
        let mut pass = Pass::default();
        for _ in 0..MAX_BATCHES {
            let timers = engine.run_due_timers(&c.id, c.lease, c.batch).await?;
            let outbox = engine.deliver_outbox(&c.id, c.lease, c.batch).await?;
            // Items left for a later pass (conflicts, backoff) do not count as progress.
            let progress = timers.fired + timers.skipped.len() + outbox.claimed - outbox.retried;
            pass.absorb(timers, outbox);
            if progress == 0 {
                break;
            }
        }
        Ok(pass)
    }

    /// Runs passes until `shutdown` completes, pausing `poll` when idle; `on_pass` sees every
    /// pass that did something. A pass in progress finishes before it stops. A database failure
    /// does not stop the worker: it is logged and the pass is tried again after a growing pause
    /// (at most a minute), since nothing half-done is left behind. Returns the totals.
    pub async fn run<S: Store>(
        &self,
        engine: &Engine<S>,
        shutdown: impl Future<Output = ()>,
        mut on_pass: impl FnMut(&Pass),
    ) -> Result<Pass, EngineError> {
        let mut total = Pass::default();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = match self.run_once(engine).await {
                Ok(pass) => {
                    failures = 0;
                    if !pass.is_idle() {
                        on_pass(&pass);
                    }
                    total.absorb(pass.timers, pass.outbox);
                    self.config.poll
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(worker = %self.config.id, %error, failures, "worker pass failed; retrying");
                    self.config
                        .poll
                        .max(Duration::from_millis(100))
                        .saturating_mul(1 << failures.min(6))
                        .min(MAX_PAUSE)
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(total),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
