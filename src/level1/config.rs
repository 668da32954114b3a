//! A host's CRM configuration: declared fields, guards, hooks, event subscribers and the clock.
//!
//! Built once (typically in a `static LazyLock`) and shared: [`CrmConfig`] is an `Arc` inside, so
//! every `host.crm()` handle gets its own cheap clone. Building compiles the guard expressions and
//! the field patterns, so nothing about the configuration can fail later, per call.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::check::expr::{ExprEnv, compile_condition};
use crate::diagnostic::{did_you_mean, unknown_name_help};
use crate::engine::data::Validator;
use crate::engine::eval::Actor;
use crate::ir::data::{DataSchema, Field, FieldType};
use crate::ir::expr::Expr;
use crate::level1::clock::{Clock, SystemClock};
use crate::level1::error::{ConfigError, ConfigProblem};
use crate::level1::model::{Action, Contact, CrmEvent};
use crate::level1::store::CrmStore;
use crate::report::Report;

/// The name of the one entity Level 1 manages (the seed's `entities.contact`).
pub const CONTACT: &str = "contact";

/// The key of a contact's id in contact data; no field may be called this.
pub const ID_KEY: &str = "id";

/// A validated, compiled CRM configuration. Cheap to clone.
#[derive(Clone)]
pub struct CrmConfig {
    inner: Arc<Inner>,
    /// Where promoted (and new) hosts keep their CRM; `None`: every host uses its document.
    store: Option<CrmStore>,
}

struct Inner {
    contact: EntityConfig,
    subscribers: Vec<Subscriber>,
    clock: Arc<dyn Clock>,
}

impl CrmConfig {
    /// Starts a configuration: `CrmConfig::builder().entity("contact", |e| e.fields([…])).build()`.
    pub fn builder() -> CrmConfigBuilder {
        CrmConfigBuilder::default()
    }

    /// The contact fields, typed: untyped names are `string` fields.
    pub fn schema(&self) -> &DataSchema {
        &self.inner.contact.schema
    }

    /// The current time by the configured clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The database store, if one is configured.
    pub fn store(&self) -> Option<&CrmStore> {
        self.store.as_ref()
    }

    /// This configuration with `store`: hosts promoted into it, and new hosts, keep their CRM
    /// there (see [promotion](super#promotion-to-the-database-store)).
    #[must_use]
    pub fn with_store(&self, store: CrmStore) -> Self {
        Self { inner: self.inner.clone(), store: Some(store) }
    }

    pub(crate) fn contact(&self) -> &EntityConfig {
        &self.inner.contact
    }

    pub(crate) fn publish(&self, event: &CrmEvent) {
        for subscriber in &self.inner.subscribers {
            subscriber(event);
        }
    }
}

impl fmt::Debug for CrmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let contact = &self.inner.contact;
        f.debug_struct("CrmConfig")
            .field("fields", &contact.schema.fields().iter().map(|f| &f.name).collect::<Vec<_>>())
            .field("guarded", &contact.guards.keys().collect::<Vec<_>>())
            .field("subscribers", &self.inner.subscribers.len())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CrmConfig`]; every problem is reported at once by [`build`](Self::build).
#[derive(Default)]
#[must_use]
pub struct CrmConfigBuilder {
    entities: Vec<(String, EntityBuilder)>,
    subscribers: Vec<Subscriber>,
    clock: Option<Arc<dyn Clock>>,
    store: Option<CrmStore>,
}

impl CrmConfigBuilder {
    /// Declares an entity (the seed's `entities.<name>`); Level 1 supports `contact`.
    pub fn entity(mut self, name: &str, declare: impl FnOnce(EntityBuilder) -> EntityBuilder) -> Self {
        self.entities.push((name.to_owned(), declare(EntityBuilder::default())));
        self
    }

    /// Calls `subscriber` with every event, after the change it announces is stored.
    pub fn subscribe(mut self, subscriber: impl Fn(&CrmEvent) + Send + Sync + 'static) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// Reads the time from `clock` instead of the system clock (for deterministic tests).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Keeps hosts' CRMs in the database `store` instead of their documents: hosts promoted with
    /// [`promote`](super::promote) and hosts that start empty (see
    /// [promotion](super#promotion-to-the-database-store)).
    pub fn store(mut self, store: CrmStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Checks and compiles the configuration.
    pub fn build(self) -> Result<CrmConfig, ConfigError> {
        let mut problems = Vec::new();
        let mut contact = None;
        for (name, entity) in self.entities {
            if name != CONTACT {
                problems.push(ConfigProblem::UnsupportedEntity { entity: name });
            } else if contact.is_some() {
                problems.push(ConfigProblem::DuplicateEntity { entity: name });
            } else {
                contact = Some(entity.compile(&mut problems));
            }
        }
        let Some(contact) = contact else {
            problems.push(ConfigProblem::MissingContactEntity);
            return Err(ConfigError { problems });
        };
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let inner = Arc::new(Inner { contact, subscribers: self.subscribers, clock });
        Ok(CrmConfig { inner, store: self.store })
    }
}

/// Declares one entity's fields, guards and hooks.
#[derive(Default)]
#[must_use]
pub struct EntityBuilder {
    fields: Vec<Field>,
    required: Vec<String>,
    guards: Vec<(String, GuardSource)>,
    before: Vec<(String, BeforeHook)>,
    after: Vec<(String, AfterHook)>,
}

impl EntityBuilder {
    /// Declares untyped fields, as the seed's `'fields' => ['name', 'email']`. An untyped field
    /// holds a string: that is what contact fields are, it lets guards such as `data.name > 5` be
    /// refused when the configuration is built, and it maps one-to-one onto a Level 2
    /// `dataSchema` (`"type": "string"`). Declare other types with [`field`](Self::field).
    pub fn fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.fields.extend(names.into_iter().map(|name| Field::new(name.into(), FieldType::String)));
        self
    }

    /// Declares a typed field, e.g. `.field("score", FieldType::Integer)`.
    pub fn field(mut self, name: impl Into<String>, ty: FieldType) -> Self {
        self.fields.push(Field::new(name.into(), ty));
        self
    }

    /// Declares a field with every constraint a Level 2 `dataSchema` can state (bounds, enum,
    /// pattern, required); data is validated the same way at both levels.
    pub fn declare(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Makes declared fields required: `add_contact` refuses data without them (or with `null`).
    pub fn required<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.required.extend(names.into_iter().map(Into::into));
        self
    }

    /// Guards `action` with a condition of the expression language over the contact
    /// (`data.status == 'active'`, `has_role('sales')`). All guards of an action must hold.
    ///
    /// The built-in actions are `add` (the guard sees the new contact), `edit` and `delete` (it
    /// sees the contact as it is); any other name is an action of the host's own, asked with
    /// [`Crm::can`](super::Crm::can).
    pub fn guard(mut self, action: &str, condition: impl Into<String>) -> Self {
        self.guards.push((action.to_owned(), GuardSource::Expr(condition.into())));
        self
    }

    /// Guards `action` with a Rust closure over the contact, as the seed's
    /// `fn($contact) => $contact->status == 'active'`.
    pub fn guard_fn(
        mut self,
        action: &str,
        guard: impl Fn(&Contact) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.guards.push((action.to_owned(), GuardSource::Closure(Arc::new(guard))));
        self
    }

    /// Runs `hook` before `action` (`add`, `edit`, `delete`), after validation and guards; an
    /// `Err(Veto)` refuses the action with its reason. Hooks run in the order they are added and
    /// the first veto stops the rest.
    pub fn before(
        mut self,
        action: &str,
        hook: impl Fn(&HookContext<'_>) -> Result<(), Veto> + Send + Sync + 'static,
    ) -> Self {
        self.before.push((action.to_owned(), Arc::new(hook)));
        self
    }

    /// Runs `hook` after `action` is stored, in the order hooks are added (before subscribers
    /// hear the event). It cannot undo the change.
    pub fn after(mut self, action: &str, hook: impl Fn(&HookContext<'_>) + Send + Sync + 'static) -> Self {
        self.after.push((action.to_owned(), Arc::new(hook)));
        self
    }

    fn compile(self, problems: &mut Vec<ConfigProblem>) -> EntityConfig {
        let mut fields: Vec<Field> = Vec::with_capacity(self.fields.len());
        for field in self.fields {
            if field.name == ID_KEY {
                problems.push(ConfigProblem::ReservedField { field: field.name });
            } else if fields.iter().any(|f| f.name == field.name) {
                problems.push(ConfigProblem::DuplicateField { field: field.name });
            } else {
                fields.push(field);
            }
        }
        for name in self.required {
            match fields.iter_mut().find(|f| f.name == name) {
                Some(field) => field.required = true,
                None => {
                    let help = unknown_name_help(&name, "field", fields.iter().map(|f| f.name.as_str()));
                    problems.push(ConfigProblem::UnknownRequired { field: name, help });
                }
            }
        }
        let schema = DataSchema::new(fields);
        let validator = validator(&schema, problems);

        let mut guards: HashMap<String, Vec<Guard>> = HashMap::new();
        for (action, source) in self.guards {
            if Action::parse(&action).is_none()
                && let Some(builtin) = did_you_mean(&action, Action::ALL.map(Action::as_str))
            {
                let help = Some(format!("did you mean `{builtin}`?"));
                problems.push(ConfigProblem::UnknownAction { action, help });
                continue;
            }
            let position = guards.get(&action).map_or(0, Vec::len) + 1;
            let guard = match source {
                GuardSource::Closure(f) => Guard::Closure { label: format!("#{position}"), f },
                GuardSource::Expr(source) => {
                    let compiled = compile_condition(&source, &ExprEnv { schema: &schema, stages: &[] });
                    match compiled.expr {
                        Some(expr) if compiled.diagnostics.is_empty() => Guard::Expr { source, expr },
                        _ => {
                            let report =
                                Report::new(format!("guard of `{action}`"), source, compiled.diagnostics);
                            problems.push(ConfigProblem::InvalidGuard { action, report });
                            continue;
                        }
                    }
                }
            };
            guards.entry(action).or_default().push(guard);
        }

        EntityConfig {
            name: CONTACT,
            schema,
            validator,
            guards,
            before: hooks_by_action(self.before, problems),
            after: hooks_by_action(self.after, problems),
        }
    }
}

/// What a hook sees: the action, who does it, when, and the contact before and after.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct HookContext<'a> {
    /// The action.
    pub action: Action,
    /// Who does it.
    pub actor: &'a Actor,
    /// When (the CRM's clock; the history entry carries the same instant).
    pub at: DateTime<Utc>,
    /// The contact as it is; `None` for `add`.
    pub before: Option<&'a Contact>,
    /// The contact as it will be (in `before` hooks) or is (in `after` hooks); `None` for `delete`.
    pub after: Option<&'a Contact>,
}

impl<'a> HookContext<'a> {
    /// The contact the action is about: the new state, or the old one for `delete`.
    pub fn contact(&self) -> Option<&'a Contact> {
        self.after.or(self.before)
    }
}

/// A `before` hook's refusal, with the reason reported in [`CrmError::Vetoed`](super::CrmError::Vetoed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veto(String);

impl Veto {
    /// A veto with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Veto {
    fn from(reason: &str) -> Self {
        Self::new(reason)
    }
}

impl From<String> for Veto {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

type Subscriber = Arc<dyn Fn(&CrmEvent) + Send + Sync>;
type GuardFn = Arc<dyn Fn(&Contact) -> bool + Send + Sync>;
pub(crate) type BeforeHook = Arc<dyn Fn(&HookContext<'_>) -> Result<(), Veto> + Send + Sync>;
pub(crate) type AfterHook = Arc<dyn Fn(&HookContext<'_>) + Send + Sync>;

enum GuardSource {
    Expr(String),
    Closure(GuardFn),
}

/// A compiled guard.
pub(crate) enum Guard {
    /// An expression, compiled once against the entity's schema.
    Expr { source: String, expr: Expr },
    /// A closure; `label` (`#n`) names it in refusals.
    Closure { label: String, f: GuardFn },
}

impl Guard {
    /// How refusals name it: the expression in backticks, or `#n` for the n-th guard of its action.
    pub(crate) fn label(&self) -> String {
        match self {
            Guard::Expr { source, .. } => format!("`{source}`"),
            Guard::Closure { label, .. } => label.clone(),
        }
    }
}

/// The compiled configuration of one entity.
pub(crate) struct EntityConfig {
    pub(crate) name: &'static str,
    pub(crate) schema: DataSchema,
    /// The engine's validator of `schema`, the one Level 2 data is checked with.
    pub(crate) validator: Validator,
    pub(crate) guards: HashMap<String, Vec<Guard>>,
    pub(crate) before: HashMap<Action, Vec<BeforeHook>>,
    pub(crate) after: HashMap<Action, Vec<AfterHook>>,
}

/// The engine's validator of `schema`, with a problem for each pattern it cannot use: one that
/// does not compile, or one on a field that is not a string (Level 1 refuses those outright).
fn validator(schema: &DataSchema, problems: &mut Vec<ConfigProblem>) -> Validator {
    let mut validator = Validator::default();
    for field in schema.fields() {
        let compiled = validator.push(field);
        if field.pattern.is_some() && field.ty != FieldType::String {
            let message = format!("patterns apply to string fields, this is a {}", field.ty.name());
            problems.push(ConfigProblem::InvalidPattern { field: field.name.clone(), message });
        } else if let Err(error) = compiled {
            problems.push(ConfigProblem::InvalidPattern { field: error.field, message: error.message });
        }
    }
    validator
}

fn hooks_by_action<H>(hooks: Vec<(String, H)>, problems: &mut Vec<ConfigProblem>) -> HashMap<Action, Vec<H>> {
    let mut by_action: HashMap<Action, Vec<H>> = HashMap::new();
    for (name, hook) in hooks {
        match Action::parse(&name) {
            Some(action) => by_action.entry(action).or_default().push(hook),
            None => {
                let help = unknown_name_help(&name, "action", Action::ALL.map(Action::as_str));
                problems.push(ConfigProblem::UnknownAction { action: name, help });
            }
        }
    }
    by_action
}
