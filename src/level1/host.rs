//! What a host is: a type with a CRM ([`HasCrm`]), and the backend its handle uses
//! ([`HostBackend`]): its own document, or the database store once it is promoted (or, with a
//! store configured, from its first change).
//!
//! # The host's document
//!
//! A promoted host's document becomes a pointer, `{"version": 1, "store": "<host id>"}`, so it
//! keeps identifying the host's one CRM (BR-007) and the host's `HasCrm` impl stays as it is. With
//! a store configured, a host whose document is empty (`null` or `{}`) starts in the store: its
//! first change creates its CRM there under a fresh UUIDv7 host id and writes the pointer.

use std::borrow::{Borrow, BorrowMut};

use chrono::SubsecRound;
use serde_json::Value as Json;

use crate::level1::backend::{Change, ChangeKind, ContactBackend, ContactBackendMut};
use crate::level1::config::CrmConfig;
use crate::level1::document::{Document, pointer, pointer_host};
use crate::level1::error::CrmError;
use crate::level1::handle::Crm;
use crate::level1::model::{Action, Contact, ContactId, Fields, HistoryEntry};
use crate::level1::store::CrmStore;
use crate::store::level1::{Level1Change, Level1ContactRow, Level1EntryRow, Level1Refusal, Level1Write};

/// A host's CRM handle, as [`HasCrm::crm`] returns it.
pub type HostCrm<'a> = Crm<HostBackend<&'a mut Json>>;

/// A host's read-only CRM handle, as [`HasCrm::crm_view`] returns it.
pub type HostCrmView<'a> = Crm<HostBackend<&'a Json>>;

/// A type with a CRM: implement the three required methods, then call `host.crm()`.
pub trait HasCrm {
    /// The CRM configuration (typically a `static`; see the [module docs](crate::level1)).
    fn crm_config(&self) -> &CrmConfig;

    /// The JSON document where this host's contacts and history live; `null` for a new host.
    fn crm_document(&self) -> &Json;

    /// The same document, to change it. Only the CRM should write it.
    fn crm_document_mut(&mut self) -> &mut Json;

    /// This host's CRM, acting as the [`SYSTEM_ACTOR`](crate::level1::SYSTEM_ACTOR); see
    /// [`Crm::with_actor`].
    fn crm(&mut self) -> HostCrm<'_> {
        // The config is an `Arc` inside: cloning it ends the shared borrow before the mutable one.
        let config = self.crm_config().clone();
        let backend = HostBackend::for_host(&config, self.crm_document_mut());
        Crm::new(config, backend)
    }

    /// This host's CRM for reading (`contacts`, `history`, `can`) through a shared reference.
    fn crm_view(&self) -> HostCrmView<'_> {
        let config = self.crm_config().clone();
        let backend = HostBackend::for_host(&config, self.crm_document());
        Crm::new(config, backend)
    }
}

/// The backend a host's [`crm()`](HasCrm::crm) uses: the host's own document, or the
/// database store for a promoted host (see the
/// [module docs](super#promotion-to-the-database-store)), chosen by configuration. Code naming
/// this type works the same with either.
#[derive(Debug)]
pub struct HostBackend<D>(HostStorage<D>);

#[derive(Debug)]
enum HostStorage<D> {
    Document(Document<D>),
    Store(StoreHost<D>),
}

impl<D: Borrow<Json>> HostBackend<D> {
    /// The store when `config` has one and the document is a promotion pointer or empty; the
    /// document otherwise (a host with contacts in its document stays there until promoted).
    pub(crate) fn for_host(config: &CrmConfig, document: D) -> Self {
        if let Some(store) = config.store() {
            let doc = document.borrow();
            let host = pointer_host(doc).map(str::to_owned);
            let empty = matches!(doc, Json::Null) || doc.as_object().is_some_and(|root| root.is_empty());
            if host.is_some() || empty {
                return Self(HostStorage::Store(StoreHost::new(
                    store.clone(),
                    config.clone(),
                    host,
                    document,
                )));
            }
        }
        Self(HostStorage::Document(Document::new(document)))
    }

    /// Whether this is the database store (the host is promoted, or starts in the store).
    pub fn is_store(&self) -> bool {
        matches!(self.0, HostStorage::Store(_))
    }
}

impl<D: Borrow<Json>> ContactBackend for HostBackend<D> {
    fn contacts(&self) -> Result<Vec<Contact>, CrmError> {
        match &self.0 {
            HostStorage::Document(document) => document.contacts(),
            HostStorage::Store(store) => store.contacts(),
        }
    }

    fn contact(&self, id: &str) -> Result<Option<Contact>, CrmError> {
        match &self.0 {
            HostStorage::Document(document) => document.contact(id),
            HostStorage::Store(store) => store.contact(id),
        }
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, CrmError> {
        match &self.0 {
            HostStorage::Document(document) => document.history(),
            HostStorage::Store(store) => store.history(),
        }
    }
}

impl<D: BorrowMut<Json>> ContactBackendMut for HostBackend<D> {
    fn commit(&mut self, change: &Change) -> Result<HistoryEntry, CrmError> {
        match &mut self.0 {
            HostStorage::Document(document) => document.commit(change),
            HostStorage::Store(store) => store.commit(change),
        }
    }
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

    fn contact_of(&self, row: Level1ContactRow) -> Contact {
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
        Ok(rows.into_iter().map(|row| self.contact_of(row)).collect())
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
        Ok(row.map(|row| self.contact_of(row)))
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
