//! The database store for Level 1 CRMs (promotion, seed US-010, BR-006): [`CrmStore`], the
//! synchronous handle on the async store that the store backend (`host`) and `promote` call.
//!
//! # Bridging a synchronous API to the async store
//!
//! The [`ContactBackend`](crate::level1::ContactBackend) traits are synchronous and sqlx is async.
//! A [`CrmStore`] owns a thread with a single-threaded tokio runtime, which owns the connections
//! ([`Level1Store`]); a call sends the work to that thread over a channel and waits on a reply
//! channel. That is safe from anywhere:
//!
//! - from plain threads, obviously;
//! - from inside an async runtime too: the caller blocks on a standard channel, never calls
//!   `Runtime::block_on` (which panics inside a runtime) and never needs its own runtime to make
//!   progress, because the store's runtime runs on its own thread — even a current-thread runtime
//!   cannot deadlock. Blocking an async worker for one query is the cost; async applications with
//!   many CRM calls wrap them in `spawn_blocking`.
//! - the connections stay on the runtime that created them, as sqlx pools require.
//!
//! The alternatives were worse: `block_on` on the caller's thread panics inside a runtime, and
//! `block_in_place` panics on a current-thread runtime. Each call is spawned as a task, so calls
//! from several threads run concurrently on PostgreSQL. Dropping the last clone of a `CrmStore`
//! closes the channel; the thread closes the connections and is joined.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::mpsc as tokio_mpsc;

use crate::level1::error::CrmError;
use crate::store::level1::{Level1Import, Level1Refusal, Level1Store};
use crate::store::{StoreResult, TenantId};

/// A unit of work for the store's thread.
type Job = Box<dyn FnOnce(Level1Store) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A connection to the database store for Level 1 CRMs, on one tenant. Cheap to clone; give it
/// to [`CrmConfigBuilder::store`](super::CrmConfigBuilder::store).
#[derive(Clone)]
pub struct CrmStore(Arc<Worker>);

struct Worker {
    jobs: Option<tokio_mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
    tenant: TenantId,
    backend: &'static str,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; joining waits for the connections to close.
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for CrmStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmStore")
            .field("backend", &self.0.backend)
            .field("tenant", &self.0.tenant.as_str())
            .finish()
    }
}

impl CrmStore {
    /// Opens (creating and migrating it if needed) the database at `location` — `postgres://…`,
    /// `sqlite:PATH` or a file path — for `tenant`'s CRMs.
    pub fn open(location: &str, tenant: TenantId) -> Result<Self, CrmError> {
        let location = location.to_owned();
        Self::start(tenant, async move { Level1Store::open(&location).await })
    }

    /// A fresh SQLite database in memory, gone with the last clone (for tests and examples).
    pub fn in_memory(tenant: TenantId) -> Result<Self, CrmError> {
        Self::start(tenant, Level1Store::in_memory())
    }

    /// The tenant whose CRMs this store holds.
    pub fn tenant(&self) -> &TenantId {
        &self.0.tenant
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.0.backend
    }

    fn start(
        tenant: TenantId,
        open: impl Future<Output = StoreResult<Level1Store>> + Send + 'static,
    ) -> Result<Self, CrmError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (jobs_tx, mut jobs_rx) = tokio_mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("crm-store".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(unavailable(format!("cannot start its runtime: {error}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = match open.await {
                        Ok(store) => store,
                        Err(error) => {
                            let _ = ready_tx.send(Err(CrmError::Store(error)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(store.backend()));
                    while let Some(job) = jobs_rx.recv().await {
                        tokio::spawn(job(store.clone()));
                    }
                    store.close().await;
                });
            })
            .map_err(|error| unavailable(format!("cannot start its thread: {error}")))?;
        let backend = match ready_rx.recv() {
            Ok(Ok(backend)) => backend,
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(error);
            }
            Err(_) => return Err(unavailable("its thread stopped while opening".to_owned())),
        };
        Ok(Self(Arc::new(Worker { jobs: Some(jobs_tx), thread: Some(thread), tenant, backend })))
    }

    /// Runs `work` on the store's thread and waits for its result.
    pub(crate) fn call<T, Fut>(
        &self,
        work: impl FnOnce(Level1Store, TenantId) -> Fut + Send + 'static,
    ) -> Result<T, CrmError>
    where
        T: Send + 'static,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let tenant = self.0.tenant.clone();
        let job: Job = Box::new(move |store| {
            Box::pin(async move {
                let _ = reply_tx.send(work(store, tenant).await);
            })
        });
        let jobs = self.0.jobs.as_ref().ok_or_else(|| unavailable("it is closed".to_owned()))?;
        jobs.send(job).map_err(|_| unavailable("its thread has stopped".to_owned()))?;
        match reply_rx.recv() {
            Ok(result) => result.map_err(CrmError::Store),
            Err(_) => Err(unavailable("its thread stopped during the call".to_owned())),
        }
    }

    /// Whether the store has a CRM for `host`.
    pub(crate) fn host_exists(&self, host: &str) -> Result<bool, CrmError> {
        let host = host.to_owned();
        self.call(move |store, tenant| async move { store.host_exists(&tenant, &host).await })
    }

    /// Creates `host`'s CRM with these contacts and history, in one transaction.
    pub(crate) fn import(
        &self,
        host: &str,
        import: Level1Import,
    ) -> Result<Result<(), Level1Refusal>, CrmError> {
        let host = host.to_owned();
        self.call(move |store, tenant| async move { store.import(&tenant, &host, &import).await })
    }
}

fn unavailable(reason: String) -> CrmError {
    CrmError::StoreUnavailable { reason }
}
