//! The database store as a Level 1 backend (promotion, seed US-010, BR-006).
//!
//! # Bridging a synchronous API to the async store
//!
//! The [`ContactBackend`] traits are synchronous and sqlx is async. A [`CrmStore`] owns a thread
//! with a single-threaded tokio runtime, which owns the connections ([`Level1Store`]); a call sends
//! the work to that thread over a channel and waits on a reply channel. That is safe from anywhere:
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
//!
//! # The host's document
//!
//! A promoted host's document becomes a pointer, `{"version": 1, "store": "<host id>"}`, so it
//! keeps identifying the host's one CRM (BR-007) and the host's `HasCrm` impl stays as it is. With
//! a store configured, a host whose document is empty (`null` or `{}`) starts in the store: its
//! first change creates its CRM there under a fresh UUIDv7 host id and writes the pointer.

use std::borrow::{Borrow, BorrowMut};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use chrono::SubsecRound;
use serde_json::Value as Json;
use tokio::sync::mpsc as tokio_mpsc;

use crate::store::level1::{
    Level1Change, Level1ContactRow, Level1EntryRow, Level1Refusal, Level1Store, Level1Write,
};
use crate::store::{StoreResult, TenantId};

use super::backend::{Change, ChangeKind, ContactBackend, ContactBackendMut, DOCUMENT_VERSION};
use super::config::CrmConfig;
use super::error::CrmError;
use super::model::{Action, Contact, ContactId, Fields, HistoryEntry};

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
    fn call<T, Fut>(
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
        import: crate::store::level1::Level1Import,
    ) -> Result<Result<(), Level1Refusal>, CrmError> {
        let host = host.to_owned();
        self.call(move |store, tenant| async move { store.import(&tenant, &host, &import).await })
    }
}

fn unavailable(reason: String) -> CrmError {
    CrmError::StoreUnavailable { reason }
}

/// The promotion pointer a promoted host's document holds.
pub(crate) fn pointer(host: &str) -> Json {
    serde_json::json!({"version": DOCUMENT_VERSION, "store": host})
}

/// The host id, if `document` is a promotion pointer.
pub(crate) fn pointer_host(document: &Json) -> Option<&str> {
    let root = document.as_object()?;
    let is_pointer = root.len() == 2 && root.get("version").and_then(Json::as_u64) == Some(DOCUMENT_VERSION);
    if is_pointer { root.get("store").and_then(Json::as_str) } else { None }
}

/// A host's CRM in the store: the backend behind [`HostBackend`](super::HostBackend) for
/// promoted hosts and, with a store configured, for hosts that start empty.
#[derive(Debug)]
pub(crate) struct StoreHost<D> {
    store: CrmStore,
    /// For the declared field order, which PostgreSQL's JSONB does not keep.
    config: CrmConfig,
    /// `None` until the first change of a host that started empty.
    host: Option<String>,
    document: D,
}

impl<D> StoreHost<D> {
    pub(crate) fn new(store: CrmStore, config: CrmConfig, host: Option<String>, document: D) -> Self {
        Self { store, config, host, document }
    }

    /// Fields in declared order, then any others (declared no more) as stored.
    fn ordered(&self, fields: Json) -> Fields {
        let Json::Object(mut stored) = fields else {
            return Fields::new();
        };
        let mut ordered = Fields::with_capacity(stored.len());
        for field in self.config.schema().fields() {
            if let Some(value) = stored.shift_remove(&field.name) {
                ordered.insert(field.name.clone(), value);
            }
        }
        ordered.extend(stored);
        ordered
    }

    fn contact(&self, row: Level1ContactRow) -> Contact {
        Contact::new(ContactId::new(row.contact_id), self.ordered(row.fields))
    }

    fn entry(&self, row: Level1EntryRow) -> Result<HistoryEntry, CrmError> {
        let action = Action::parse(&row.action).ok_or_else(|| {
            CrmError::Store(crate::store::StoreError::Database {
                kind: "stored value does not decode",
                source: sqlx::Error::Decode(format!("unknown action `{}`", row.action).into()),
            })
        })?;
        Ok(HistoryEntry {
            seq: row.seq,
            at: row.at,
            actor: row.actor,
            action,
            contact: ContactId::new(row.contact_id),
            before: row.before.map(|f| self.ordered(f)),
            after: row.after.map(|f| self.ordered(f)),
        })
    }

    /// Fails if the document names a host the store does not have (another database or tenant);
    /// asked only when a list comes back empty, so a normal read costs one query.
    fn check_host(&self, host: &str) -> Result<(), CrmError> {
        if self.store.host_exists(host)? {
            Ok(())
        } else {
            Err(CrmError::UnknownHost { host: host.to_owned() })
        }
    }
}

impl<D: Borrow<Json>> ContactBackend for StoreHost<D> {
    fn contacts(&self) -> Result<Vec<Contact>, CrmError> {
        let Some(host) = self.host.clone() else {
            return Ok(Vec::new());
        };
        let key = host.clone();
        let rows =
            self.store.call(move |store, tenant| async move { store.contacts(&tenant, &key).await })?;
        if rows.is_empty() {
            self.check_host(&host)?;
        }
        Ok(rows.into_iter().map(|row| self.contact(row)).collect())
    }

    fn contact(&self, id: &str) -> Result<Option<Contact>, CrmError> {
        let Some(host) = self.host.clone() else {
            return Ok(None);
        };
        let id = id.to_owned();
        // No host check on a miss: asking for an absent contact is routine (every add does), and
        // an unknown host shows in `contacts`, `history` and the next commit.
        let row =
            self.store.call(move |store, tenant| async move { store.contact(&tenant, &host, &id).await })?;
        Ok(row.map(|row| self.contact(row)))
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, CrmError> {
        let Some(host) = self.host.clone() else {
            return Ok(Vec::new());
        };
        let key = host.clone();
        let rows = self.store.call(move |store, tenant| async move { store.history(&tenant, &key).await })?;
        if rows.is_empty() {
            self.check_host(&host)?;
        }
        rows.into_iter().map(|row| self.entry(row)).collect()
    }
}

impl<D: BorrowMut<Json>> ContactBackendMut for StoreHost<D> {
    fn commit(&mut self, change: &Change) -> Result<HistoryEntry, CrmError> {
        let (host, create_host) = match &self.host {
            Some(host) => (host.clone(), false),
            None => (uuid::Uuid::now_v7().to_string(), true),
        };
        let fields = |contact: &Contact| Json::Object(contact.fields.clone());
        let write = Level1Write {
            contact_id: change.contact_id().as_str().to_owned(),
            change: match &change.kind {
                ChangeKind::Add(contact) => Level1Change::Add { fields: fields(contact) },
                ChangeKind::Edit { before, after } => {
                    Level1Change::Edit { before: fields(before), after: fields(after) }
                }
                ChangeKind::Delete(before) => Level1Change::Delete { before: fields(before) },
            },
            at: change.at,
            actor: change.actor.clone(),
            create_host,
        };
        let key = host.clone();
        let outcome =
            self.store.call(move |store, tenant| async move { store.write(&tenant, &key, &write).await })?;
        let id = change.contact_id();
        let seq = outcome.map_err(|refusal| match refusal {
            Level1Refusal::ContactExists => CrmError::DuplicateId { id: id.clone() },
            Level1Refusal::ContactMissing => CrmError::NotFound { id: id.as_str().to_owned() },
            Level1Refusal::ContactChanged => CrmError::Conflict { id: id.as_str().to_owned() },
            Level1Refusal::HostMissing => CrmError::UnknownHost { host: host.clone() },
            Level1Refusal::HostExists => CrmError::HostExists { host: host.clone() },
        })?;
        if create_host {
            // After the commit: a refused first change leaves the document as it was.
            *self.document.borrow_mut() = pointer(&host);
            self.host = Some(host);
        }
        let mut entry = change.entry(seq);
        // What `history()` will read back: the store keeps microseconds.
        entry.at = entry.at.trunc_subsecs(6);
        Ok(entry)
    }
}
