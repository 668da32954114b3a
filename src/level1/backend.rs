//! Where contacts and history live: the [`ContactBackend`] traits and the [`Change`] a backend
//! stores. The backends themselves are `document` (a host's JSON document) and `host` (the
//! document or the database store, chosen by configuration).
//!
//! A backend only reads and stores; every rule (validation, guards, hooks, events, the shape of
//! history entries) lives in the [`Crm`](super::Crm) handle, so two backends cannot disagree about
//! behaviour. The one obligation a backend has beyond storage is atomicity: [`commit`] applies the
//! contact change *and* appends its history entry, or does nothing.
//!
//! [`commit`]: ContactBackendMut::commit

use chrono::{DateTime, Utc};

use crate::level1::error::CrmError;
use crate::level1::model::{Action, Contact, ContactId, HistoryEntry};

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
