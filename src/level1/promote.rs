//! The migration helper: moves a host's in-document contacts and history into the database store.
//!
//! All or nothing: the document is read and checked first, everything is written in one
//! transaction, and only then is the document replaced by the promotion pointer. A second run is
//! refused with a typed error ([`CrmError::AlreadyPromoted`], or [`CrmError::HostExists`] for a
//! host id the store has) and changes nothing.

use serde_json::Value as Json;

use crate::level1::backend::ContactBackend;
use crate::level1::document::{Document, pointer, pointer_host};
use crate::level1::error::CrmError;
use crate::level1::host::HasCrm;
use crate::level1::model::{Fields, MAX_ID_LEN};
use crate::store::level1::{Level1ContactRow, Level1EntryRow, Level1Import, Level1Refusal};

/// What [`promote`] moved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Promotion {
    /// The host's id in the store (also in its document now).
    pub host: String,
    /// How many contacts moved.
    pub contacts: usize,
    /// How many history entries moved.
    pub entries: usize,
}

/// Moves `host`'s contacts and history from its document into the store of its configuration,
/// under a fresh host id (a UUIDv7), and replaces the document by a pointer to it. Ids, sequence
/// numbers, actors and before/after values move unchanged; timestamps keep microseconds.
///
/// Refused, changing nothing, when the configuration has no store
/// ([`CrmError::StoreNotConfigured`]), the host is promoted already
/// ([`CrmError::AlreadyPromoted`]), the document is damaged ([`CrmError::CorruptDocument`]) or
/// the store fails ([`CrmError::Store`]).
pub fn promote<H: HasCrm + ?Sized>(host: &mut H) -> Result<Promotion, CrmError> {
    promote_to(host, None)
}

/// Like [`promote`], under a host id of the caller's choosing, e.g. `"user:42"`, so the store's
/// rows name the host the application knows. An id the store already has is refused
/// ([`CrmError::HostExists`]): rerunning after the document was lost (say, the application crashed
/// before saving the pointer) reports that rather than copying the CRM twice.
pub fn promote_as<H: HasCrm + ?Sized>(host: &mut H, id: &str) -> Result<Promotion, CrmError> {
    let reason = if id.is_empty() {
        Some("it is empty")
    } else if id.len() > MAX_ID_LEN {
        Some("it is longer than 128 bytes")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(CrmError::InvalidHostId { id: id.to_owned(), reason });
    }
    promote_to(host, Some(id))
}

fn promote_to<H: HasCrm + ?Sized>(host: &mut H, id: Option<&str>) -> Result<Promotion, CrmError> {
    let Some(store) = host.crm_config().store().cloned() else {
        return Err(CrmError::StoreNotConfigured);
    };
    let document = host.crm_document();
    if let Some(promoted) = pointer_host(document) {
        return Err(CrmError::AlreadyPromoted { host: promoted.to_owned() });
    }
    // Reads and checks the whole document; a damaged one is reported and nothing moves.
    let backend = Document::new(document);
    let (contacts, history) = (backend.contacts()?, backend.history()?);
    let object = |fields: &Fields| Json::Object(fields.clone());
    let import = Level1Import {
        contacts: contacts
            .iter()
            .map(|c| Level1ContactRow { contact_id: c.id.as_str().to_owned(), fields: object(&c.fields) })
            .collect(),
        history: history
            .iter()
            .map(|e| Level1EntryRow {
                seq: e.seq,
                at: e.at,
                actor: e.actor.clone(),
                action: e.action.as_str().to_owned(),
                contact_id: e.contact.as_str().to_owned(),
                before: e.before.as_ref().map(object),
                after: e.after.as_ref().map(object),
            })
            .collect(),
        at: host.crm_config().now(),
    };
    let id = id.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    match store.import(&id, import)? {
        Ok(()) => {}
        Err(Level1Refusal::HostExists) => return Err(CrmError::HostExists { host: id }),
        // An import only creates; no other refusal can arise.
        Err(other) => {
            return Err(CrmError::StoreUnavailable { reason: format!("unexpected refusal {other:?}") });
        }
    }
    // The only change to the document, after the store committed.
    *host.crm_document_mut() = pointer(&id);
    Ok(Promotion { host: id, contacts: contacts.len(), entries: history.len() })
}
