//! The [`Crm`] handle: every Level 1 operation, over any [`ContactBackend`].
//!
//! An operation runs in a fixed order: validate the data, check the guards, run the `before`
//! hooks, commit (contact and history entry, atomically), run the `after` hooks, publish the
//! event. Everything before the commit is free of side effects on the CRM, so a refusal at any
//! step leaves it untouched.

use serde_json::Value as Json;

use crate::diagnostic::unknown_name_help;
use crate::engine::data::Record;
use crate::engine::eval::{Actor, Context, evaluate_condition};
use crate::level1::backend::{Change, ChangeKind, ContactBackend, ContactBackendMut};
use crate::level1::config::{CrmConfig, Guard, HookContext};
use crate::level1::error::CrmError;
use crate::level1::model::{Action, Contact, ContactId, CrmEvent, HistoryEntry};

/// The id of the actor a handle acts as unless told otherwise.
pub const SYSTEM_ACTOR: &str = "system";

/// A CRM handle: a configuration, a backend and the actor it acts as.
///
/// Get one from [`HasCrm::crm`](super::HasCrm::crm); it is cheap and meant to be short-lived
/// (`user.crm().add_contact(…)`).
#[derive(Debug)]
pub struct Crm<B> {
    config: CrmConfig,
    backend: B,
    actor: Actor,
}

impl<B> Crm<B> {
    /// A handle over `backend`, acting as the [`SYSTEM_ACTOR`].
    pub fn new(config: CrmConfig, backend: B) -> Self {
        let actor = Actor { id: SYSTEM_ACTOR.to_owned(), ..Actor::default() };
        Self { config, backend, actor }
    }

    /// Acts as `actor`: recorded in history, seen by guards (`actor.id`, `has_role`) and hooks.
    #[must_use]
    pub fn with_actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// The actor this handle acts as.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The configuration.
    pub fn config(&self) -> &CrmConfig {
        &self.config
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Gives the backend back.
    pub fn into_backend(self) -> B {
        self.backend
    }
}

impl<B: ContactBackend> Crm<B> {
    /// Every contact, in the order they were added (the seed's `getContacts()`).
    pub fn contacts(&self) -> Result<Vec<Contact>, CrmError> {
        self.backend.contacts()
    }

    /// The contact with this id, if any.
    pub fn contact(&self, id: impl AsRef<str>) -> Result<Option<Contact>, CrmError> {
        self.backend.contact(id.as_ref())
    }

    /// Every change ever made, oldest first, with timestamp, actor, action, before and after.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, CrmError> {
        self.backend.history()
    }

    /// Everything this CRM holds, for moving it into another backend (promotion).
    pub fn export(&self) -> Result<(Vec<Contact>, Vec<HistoryEntry>), CrmError> {
        Ok((self.backend.contacts()?, self.backend.history()?))
    }

    /// Whether the actor may perform `action` (seed `can('edit')`): its guards hold. Guards that
    /// read the contact see one with no fields; ask [`can_on`](Self::can_on) about a given contact.
    /// An action that is neither built in (`add`, `edit`, `delete`) nor guarded is refused. No
    /// side effects: nothing is stored, no hook runs, no event is published.
    pub fn can(&self, action: &str) -> bool {
        self.check(action, None).is_ok()
    }

    /// Whether the actor may perform `action` on `contact`; like [`can`](Self::can).
    pub fn can_on(&self, action: &str, contact: &Contact) -> bool {
        self.check(action, Some(contact)).is_ok()
    }

    /// Like [`can_on`](Self::can_on), with the reason for a refusal: [`CrmError::Refused`],
    /// [`CrmError::GuardFailed`] or [`CrmError::UnknownAction`].
    pub fn check(&self, action: &str, contact: Option<&Contact>) -> Result<(), CrmError> {
        let entity = self.config.contact();
        let Some(guards) = entity.guards.get(action) else {
            if Action::parse(action).is_some() {
                return Ok(());
            }
            let known =
                Action::ALL.iter().map(|a| a.as_str()).chain(entity.guards.keys().map(String::as_str));
            let help = unknown_name_help(action, "action", known);
            return Err(CrmError::UnknownAction { action: action.to_owned(), help });
        };
        let blank;
        let contact = match contact {
            Some(contact) => contact,
            None => {
                blank = Contact::blank();
                &blank
            }
        };
        // Built on the first expression guard: closure guards need neither.
        let mut record = None;
        let mut now = None;
        for guard in guards {
            let holds = match guard {
                Guard::Closure { f, .. } => f(contact),
                Guard::Expr { expr, .. } => {
                    let data =
                        record.get_or_insert_with(|| Record::from_object(&entity.schema, &contact.fields));
                    let ctx = Context {
                        data,
                        stage: "",
                        entity: entity.name,
                        actor: Some(&self.actor),
                        now: *now.get_or_insert_with(|| self.config.now()),
                    };
                    evaluate_condition(expr, &ctx).map_err(|source| CrmError::GuardFailed {
                        action: action.to_owned(),
                        guard: guard.label(),
                        source,
                    })?
                }
            };
            if !holds {
                return Err(CrmError::Refused { action: action.to_owned(), guard: guard.label() });
            }
        }
        Ok(())
    }
}

impl<B: ContactBackendMut> Crm<B> {
    /// Adds a contact (seed `addContact($data)`) and returns it with its id.
    ///
    /// `data` is a JSON object of declared fields (`null` means absent); an `id` key supplies the
    /// id instead of generating one. Refused as a whole, leaving the CRM untouched, on unknown,
    /// missing or mistyped fields, a duplicate id, a guard of `add` or a `before` hook's veto.
    /// Publishes [`CrmEvent::ContactCreated`].
    pub fn add_contact(&mut self, data: Json) -> Result<Contact, CrmError> {
        let at = self.config.now();
        let (id, fields) = self.config.contact().validate_new(data)?;
        let contact = Contact::new(id.unwrap_or_else(|| ContactId::generate(at)), fields);
        // The backend refuses duplicates too; checking first keeps hooks from seeing a doomed add.
        if self.backend.contact(contact.id.as_str())?.is_some() {
            return Err(CrmError::DuplicateId { id: contact.id });
        }
        self.apply(Change::new(ChangeKind::Add(contact.clone()), at, self.actor.id.clone()))?;
        Ok(contact)
    }

    /// Changes a contact with a JSON merge patch (one level deep: a key sets a field, `null`
    /// removes it, other fields stay) and returns it. Guarded by `edit`, seen as it is before the
    /// change. A patch that changes nothing is permission-checked but not recorded.
    /// Publishes [`CrmEvent::ContactUpdated`].
    pub fn update_contact(&mut self, id: impl AsRef<str>, patch: Json) -> Result<Contact, CrmError> {
        let at = self.config.now();
        let before = self.existing(id.as_ref())?;
        let fields = self.config.contact().validate_patch(&before, patch)?;
        let after = Contact::new(before.id.clone(), fields);
        if after == before {
            self.check(Action::Edit.as_str(), Some(&before))?;
            return Ok(before);
        }
        self.apply(Change::new(
            ChangeKind::Edit { before, after: after.clone() },
            at,
            self.actor.id.clone(),
        ))?;
        Ok(after)
    }

    /// Removes a contact and returns it as it was; its history stays. Guarded by `delete`.
    /// Publishes [`CrmEvent::ContactRemoved`].
    pub fn remove_contact(&mut self, id: impl AsRef<str>) -> Result<Contact, CrmError> {
        let at = self.config.now();
        let contact = self.existing(id.as_ref())?;
        self.apply(Change::new(ChangeKind::Delete(contact.clone()), at, self.actor.id.clone()))?;
        Ok(contact)
    }

    fn existing(&self, id: &str) -> Result<Contact, CrmError> {
        self.backend.contact(id)?.ok_or_else(|| CrmError::NotFound { id: id.to_owned() })
    }

    /// Guards, `before` hooks, commit, `after` hooks, event.
    fn apply(&mut self, change: Change) -> Result<HistoryEntry, CrmError> {
        let action = change.action();
        // `add` guards judge the contact to be; `edit` and `delete` guards the contact as it is.
        let subject = if action == Action::Add { change.after() } else { change.before() };
        self.check(action.as_str(), subject)?;

        let entity = self.config.contact();
        let ctx = HookContext {
            action,
            actor: &self.actor,
            at: change.at,
            before: change.before(),
            after: change.after(),
        };
        for hook in entity.before.get(&action).into_iter().flatten() {
            hook(&ctx).map_err(|veto| CrmError::Vetoed {
                action: action.as_str().to_owned(),
                reason: veto.reason().to_owned(),
            })?;
        }

        let entry = self.backend.commit(&change)?;

        for hook in entity.after.get(&action).into_iter().flatten() {
            hook(&ctx);
        }
        let event = match change.kind {
            ChangeKind::Add(contact) => CrmEvent::ContactCreated { contact, entry: entry.clone() },
            ChangeKind::Edit { after, .. } => {
                CrmEvent::ContactUpdated { contact: after, entry: entry.clone() }
            }
            ChangeKind::Delete(contact) => CrmEvent::ContactRemoved { contact, entry: entry.clone() },
        };
        self.config.publish(&event);
        Ok(entry)
    }
}
