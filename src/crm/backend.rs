//! Where contacts and history live: the [`ContactBackend`] traits and the document backend.
//!
//! A backend only reads and stores; every rule (validation, guards, hooks, events, the shape of
//! history entries) lives in the [`Crm`](super::Crm) handle, so two backends cannot disagree about
//! behaviour. The one obligation a backend has beyond storage is atomicity: [`commit`] applies the
//! contact change *and* appends its history entry, or does nothing.
//!
//! [`commit`]: ContactBackendMut::commit

use std::borrow::{Borrow, BorrowMut};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value as Json;

use super::config::CrmConfig;
use super::error::CrmError;
use super::model::{Action, Contact, ContactId, Fields, HistoryEntry};
use super::store::{StoreHost, pointer_host};
use super::validate::kind;

/// Reads a CRM's contacts and history.
pub trait ContactBackend {
    /// Every contact, in the order they were added.
    fn contacts(&self) -> Result<Vec<Contact>, CrmError>;
    /// The contact with this id, if any.
    fn contact(&self, id: &str) -> Result<Option<Contact>, CrmError>;
    /// The whole history, oldest first.
    fn history(&self) -> Result<Vec<HistoryEntry>, CrmError>;
}

/// Stores changes to a CRM.
pub trait ContactBackendMut: ContactBackend {
    /// Applies `change` and appends its history entry (numbered after the last) atomically: on
    /// `Err` nothing changed. Refuses an add whose id exists ([`CrmError::DuplicateId`]) and an edit
    /// or delete of a contact that does not ([`CrmError::NotFound`]).
    fn commit(&mut self, change: &Change) -> Result<HistoryEntry, CrmError>;
}

/// One change the handle asks a backend to store; only the handle makes these.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Change {
    /// What happens to which contact.
    pub kind: ChangeKind,
    /// When (becomes the history entry's timestamp).
    pub at: DateTime<Utc>,
    /// The actor's id.
    pub actor: String,
}

/// What a [`Change`] does.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// Insert a new contact.
    Add(Contact),
    /// Replace a contact's fields.
    Edit {
        /// The contact as it is stored.
        before: Contact,
        /// The contact as it will be (same id).
        after: Contact,
    },
    /// Remove a contact (its history stays).
    Delete(Contact),
}

impl Change {
    pub(crate) fn new(kind: ChangeKind, at: DateTime<Utc>, actor: String) -> Self {
        Self { kind, at, actor }
    }

    /// The action it records.
    pub fn action(&self) -> Action {
        match self.kind {
            ChangeKind::Add(_) => Action::Add,
            ChangeKind::Edit { .. } => Action::Edit,
            ChangeKind::Delete(_) => Action::Delete,
        }
    }

    /// The contact before; `None` for an add.
    pub fn before(&self) -> Option<&Contact> {
        match &self.kind {
            ChangeKind::Add(_) => None,
            ChangeKind::Edit { before, .. } | ChangeKind::Delete(before) => Some(before),
        }
    }

    /// The contact after; `None` for a delete.
    pub fn after(&self) -> Option<&Contact> {
        match &self.kind {
            ChangeKind::Add(after) | ChangeKind::Edit { after, .. } => Some(after),
            ChangeKind::Delete(_) => None,
        }
    }

    /// The id of the contact it changes.
    pub fn contact_id(&self) -> &ContactId {
        match &self.kind {
            ChangeKind::Add(contact)
            | ChangeKind::Delete(contact)
            | ChangeKind::Edit { after: contact, .. } => &contact.id,
        }
    }

    /// The history entry recording this change as entry number `seq`.
    pub fn entry(&self, seq: u64) -> HistoryEntry {
        HistoryEntry {
            seq,
            at: self.at,
            actor: self.actor.clone(),
            action: self.action(),
            contact: self.contact_id().clone(),
            before: self.before().map(|c| c.fields.clone()),
            after: self.after().map(|c| c.fields.clone()),
        }
    }
}

/// The backend a host's [`crm()`](super::HasCrm::crm) uses: the host's own document, or the
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
        Self(HostStorage::Document(Document(document)))
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

/// The Level 1 backend: contacts and history in one JSON document (the seed's "JSON column").
///
/// `D` is how the document is held: `&mut Value` for a host's field, `&Value` for read-only
/// access, or an owned `Value`. The layout is versioned:
///
/// ```json
/// {"version": 1,
///  "contacts": {"<id>": {"name": "Ann", …}, …},
///  "history": [{"seq": 1, "at": "2026-01-05T09:00:00Z", "actor": "system", "action": "add",
///               "contact": "<id>", "before": null, "after": {"name": "Ann", …}}, …]}
/// ```
///
/// `null` and `{}` are an empty CRM, so a host starts with either and reading never writes. A
/// commit builds the whole new document first and swaps it in last, so a refused or failed change
/// leaves the document byte-for-byte as it was. Every read checks the layout (and that sequence
/// numbers run 1, 2, 3, …) and reports a damaged document instead of guessing.
#[derive(Clone, Debug)]
pub struct Document<D>(D);

/// The layout version this build reads and writes.
pub const DOCUMENT_VERSION: u64 = 1;

impl<D: Borrow<Json>> Document<D> {
    /// A backend over `document`.
    pub fn new(document: D) -> Self {
        Self(document)
    }

    /// The document.
    pub fn get(&self) -> &Json {
        self.0.borrow()
    }

    /// Gives the document back.
    pub fn into_inner(self) -> D {
        self.0
    }
}

impl<D: Borrow<Json>> ContactBackend for Document<D> {
    fn contacts(&self) -> Result<Vec<Contact>, CrmError> {
        Layout::open(self.get())?.contacts()
    }

    fn contact(&self, id: &str) -> Result<Option<Contact>, CrmError> {
        let layout = Layout::open(self.get())?;
        layout.contacts.get(id).map(|fields| contact(id, fields)).transpose()
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, CrmError> {
        Layout::open(self.get())?.history()
    }
}

impl<D: BorrowMut<Json>> ContactBackendMut for Document<D> {
    fn commit(&mut self, change: &Change) -> Result<HistoryEntry, CrmError> {
        let layout = Layout::open(self.get())?;
        // Check the whole document first, so nothing is ever added to a damaged one.
        layout.contacts()?;
        let entries = layout.history()?.len();
        let id = change.contact_id().as_str();
        let exists = layout.contacts.contains_key(id);
        match change.kind {
            ChangeKind::Add(_) if exists => {
                return Err(CrmError::DuplicateId { id: change.contact_id().clone() });
            }
            ChangeKind::Edit { .. } | ChangeKind::Delete(_) if !exists => {
                return Err(CrmError::NotFound { id: id.to_owned() });
            }
            _ => {}
        }
        let entry = change.entry(entries as u64 + 1);

        let mut contacts = layout.contacts.clone();
        match &change.kind {
            ChangeKind::Add(contact) | ChangeKind::Edit { after: contact, .. } => {
                // Inserting an existing key keeps its position, so an edit does not reorder contacts.
                contacts.insert(id.to_owned(), Json::Object(contact.fields.clone()));
            }
            ChangeKind::Delete(_) => {
                contacts.shift_remove(id);
            }
        }
        let mut history = layout.history.to_vec();
        history.push(stored_entry(&entry));
        let mut root = Fields::new();
        root.insert("version".to_owned(), DOCUMENT_VERSION.into());
        root.insert("contacts".to_owned(), Json::Object(contacts));
        root.insert("history".to_owned(), Json::Array(history));

        // The only write, after everything that can fail.
        *self.0.borrow_mut() = Json::Object(root);
        Ok(entry)
    }
}

/// A checked view of a document's top level.
struct Layout<'a> {
    contacts: &'a Fields,
    history: &'a [Json],
}

static EMPTY_FIELDS: std::sync::LazyLock<Fields> = std::sync::LazyLock::new(Fields::new);

impl<'a> Layout<'a> {
    fn open(document: &'a Json) -> Result<Self, CrmError> {
        let root = match document {
            Json::Null => return Ok(Self::empty()),
            Json::Object(root) if root.is_empty() => return Ok(Self::empty()),
            Json::Object(root) => root,
            other => return Err(corrupt(format!("expected an object, found {}", kind(other)))),
        };
        if let Some(host) = pointer_host(document) {
            return Err(CrmError::Moved { host: host.to_owned() });
        }
        if let Some(key) = root.keys().find(|key| !matches!(key.as_str(), "version" | "contacts" | "history"))
        {
            return Err(corrupt(format!("unexpected key `{key}`")));
        }
        match root.get("version").and_then(Json::as_u64) {
            Some(DOCUMENT_VERSION) => {}
            Some(found) => return Err(CrmError::UnsupportedVersion { found, supported: DOCUMENT_VERSION }),
            None => return Err(corrupt("`version` is missing or not a number".to_owned())),
        }
        let Some(Json::Object(contacts)) = root.get("contacts") else {
            return Err(corrupt("`contacts` is missing or not an object".to_owned()));
        };
        let Some(Json::Array(history)) = root.get("history") else {
            return Err(corrupt("`history` is missing or not an array".to_owned()));
        };
        Ok(Self { contacts, history })
    }

    fn empty() -> Self {
        Self { contacts: &EMPTY_FIELDS, history: &[] }
    }

    fn contacts(&self) -> Result<Vec<Contact>, CrmError> {
        self.contacts.iter().map(|(id, fields)| contact(id, fields)).collect()
    }

    fn history(&self) -> Result<Vec<HistoryEntry>, CrmError> {
        self.history.iter().enumerate().map(|(i, entry)| history_entry(i, entry)).collect()
    }
}

fn contact(id: &str, fields: &Json) -> Result<Contact, CrmError> {
    match fields {
        Json::Object(fields) => Ok(Contact::new(ContactId::new(id), fields.clone())),
        other => Err(corrupt(format!("contact `{id}` is {}, not an object", kind(other)))),
    }
}

/// A history entry as stored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEntry {
    seq: u64,
    at: String,
    actor: String,
    action: String,
    contact: String,
    before: Option<Fields>,
    after: Option<Fields>,
}

fn history_entry(index: usize, json: &Json) -> Result<HistoryEntry, CrmError> {
    let position = index as u64 + 1;
    let bad = |what: String| corrupt(format!("history entry {position}: {what}"));
    let stored = StoredEntry::deserialize(json).map_err(|e| bad(e.to_string()))?;
    if stored.seq != position {
        return Err(bad(format!("sequence number is {}", stored.seq)));
    }
    let at = DateTime::parse_from_rfc3339(&stored.at).map_err(|e| bad(format!("timestamp: {e}")))?.to_utc();
    let action =
        Action::parse(&stored.action).ok_or_else(|| bad(format!("unknown action `{}`", stored.action)))?;
    let shape_ok = match action {
        Action::Add => stored.before.is_none() && stored.after.is_some(),
        Action::Edit => stored.before.is_some() && stored.after.is_some(),
        Action::Delete => stored.before.is_some() && stored.after.is_none(),
    };
    if !shape_ok {
        return Err(bad(format!("`before`/`after` do not fit action `{action}`")));
    }
    Ok(HistoryEntry {
        seq: stored.seq,
        at,
        actor: stored.actor,
        action,
        contact: ContactId::new(stored.contact),
        before: stored.before,
        after: stored.after,
    })
}

fn stored_entry(entry: &HistoryEntry) -> Json {
    let fields = |fields: &Option<Fields>| fields.clone().map_or(Json::Null, Json::Object);
    let mut stored = Fields::new();
    stored.insert("seq".to_owned(), entry.seq.into());
    stored.insert("at".to_owned(), entry.at.to_rfc3339_opts(SecondsFormat::AutoSi, true).into());
    stored.insert("actor".to_owned(), entry.actor.as_str().into());
    stored.insert("action".to_owned(), entry.action.as_str().into());
    stored.insert("contact".to_owned(), entry.contact.as_str().into());
    stored.insert("before".to_owned(), fields(&entry.before));
    stored.insert("after".to_owned(), fields(&entry.after));
    Json::Object(stored)
}

fn corrupt(reason: String) -> CrmError {
    CrmError::CorruptDocument { reason }
}
