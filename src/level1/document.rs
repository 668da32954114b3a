//! The document backend: a host's contacts and history in one JSON document it owns (the seed's
//! "JSON column"), and the promotion pointer that replaces the document once the host's CRM moved
//! to the database store.

use std::borrow::{Borrow, BorrowMut};

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::engine::data::json_kind;
use crate::level1::backend::{Change, ChangeKind, ContactBackend, ContactBackendMut};
use crate::level1::error::CrmError;
use crate::level1::model::{Action, Contact, ContactId, Fields, HistoryEntry};

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
            other => return Err(corrupt(format!("expected an object, found {}", json_kind(other)))),
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
        other => Err(corrupt(format!("contact `{id}` is {}, not an object", json_kind(other)))),
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
