//! The data the CRM hands out: contacts, history entries, actions and events.
//!
//! These are API types, separate from the document's storage rows (the `document` module), so the
//! storage format can evolve (or move to the database) without changing what callers see.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::{NoContext, Timestamp, Uuid};

/// A contact's field values by name: the JSON object the caller passed, validated.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// A contact id: unique within one host's CRM and never reused, even after removal.
///
/// Generated ids are UUIDv7 strings (time-ordered and unique across hosts, so moving contacts into
/// the shared database store never needs to renumber them); callers may also supply their own
/// (an import from another system) in the reserved `id` key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(String);

/// The longest caller-supplied id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

impl ContactId {
    /// A fresh UUIDv7 whose time part is `at` (the CRM's clock) and whose rest is random.
    pub(crate) fn generate(at: DateTime<Utc>) -> Self {
        // Instants before 1970 have no UUIDv7 encoding; clamp rather than fail, uniqueness comes
        // from the 74 random bits anyway.
        let secs = u64::try_from(at.timestamp()).unwrap_or(0);
        let ts = Timestamp::from_unix(NoContext, secs, at.timestamp_subsec_nanos());
        Self(Uuid::new_v7(ts).to_string())
    }

    /// An id read from storage or from the caller, unchecked; the handle validates caller input.
    pub(crate) fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ContactId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A contact: its id and its field values.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// Its field values; a field that is absent has no key (never `null`).
    pub fields: Fields,
}

impl Contact {
    pub(crate) fn new(id: ContactId, fields: Fields) -> Self {
        Self { id, fields }
    }

    /// What a guard sees when `can(action)` asks without a contact: no id, no fields.
    pub(crate) fn blank() -> Self {
        Self::new(ContactId::new(""), Fields::new())
    }

    /// The value of a field, `None` when absent.
    pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
        self.fields.get(field)
    }

    /// The value of a field if it is a string: `contact.get_str("status") == Some("active")`.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.get(field).and_then(serde_json::Value::as_str)
    }

    /// The contact as one JSON object: `id` first, then the fields.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = Fields::with_capacity(self.fields.len() + 1);
        object.insert("id".to_owned(), self.id.as_str().into());
        object.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        serde_json::Value::Object(object)
    }
}

/// A built-in action: what hooks attach to, what history records, what guards named so refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `add_contact`; guards and hooks named `"add"`.
    Add,
    /// `update_contact`; guards and hooks named `"edit"`.
    Edit,
    /// `remove_contact`; guards and hooks named `"delete"`.
    Delete,
}

impl Action {
    /// Every built-in action.
    pub const ALL: [Action; 3] = [Action::Add, Action::Edit, Action::Delete];

    /// The name guards, hooks and history use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Edit => "edit",
            Action::Delete => "delete",
        }
    }

    /// The built-in action called `name`.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.as_str() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change in a CRM's history. History is append-only: entries are only ever added, by the
/// operation they record, and their sequence numbers run 1, 2, 3, … without gaps.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Position in the history, from 1.
    pub seq: u64,
    /// When the change happened (the CRM's clock).
    pub at: DateTime<Utc>,
    /// The id of the actor who made it.
    pub actor: String,
    /// What was done.
    pub action: Action,
    /// The contact it was done to.
    pub contact: ContactId,
    /// The contact's fields before; `None` for an add.
    pub before: Option<Fields>,
    /// The contact's fields after; `None` for a delete.
    pub after: Option<Fields>,
}

/// A domain event, delivered to the subscribers of the [`CrmConfig`](super::CrmConfig) after the
/// change it announces is stored.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CrmEvent {
    /// A contact was added (`add_contact`); the seed's `ContactCreatedEvent`.
    ContactCreated {
        /// The new contact.
        contact: Contact,
        /// The history entry recording it.
        entry: HistoryEntry,
    },
    /// A contact was changed (`update_contact`).
    ContactUpdated {
        /// The contact after the change.
        contact: Contact,
        /// The history entry recording it (with the values before).
        entry: HistoryEntry,
    },
    /// A contact was removed (`remove_contact`).
    ContactRemoved {
        /// The contact as it was.
        contact: Contact,
        /// The history entry recording it.
        entry: HistoryEntry,
    },
}

impl CrmEvent {
    /// The event's name: `"ContactCreated"`, `"ContactUpdated"` or `"ContactRemoved"`.
    pub const fn name(&self) -> &'static str {
        match self {
            CrmEvent::ContactCreated { .. } => "ContactCreated",
            CrmEvent::ContactUpdated { .. } => "ContactUpdated",
            CrmEvent::ContactRemoved { .. } => "ContactRemoved",
        }
    }

    /// The contact the event is about.
    pub const fn contact(&self) -> &Contact {
        match self {
            CrmEvent::ContactCreated { contact, .. }
            | CrmEvent::ContactUpdated { contact, .. }
            | CrmEvent::ContactRemoved { contact, .. } => contact,
        }
    }

    /// The history entry recording the change.
    pub const fn entry(&self) -> &HistoryEntry {
        match self {
            CrmEvent::ContactCreated { entry, .. }
            | CrmEvent::ContactUpdated { entry, .. }
            | CrmEvent::ContactRemoved { entry, .. } => entry,
        }
    }
}
