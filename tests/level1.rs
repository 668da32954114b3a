//! Level 1: every user story (US-001…US-005), functional requirement (FR-L1-001…007) and rule
//! (BR-007) as a test, and promotion to the database store (US-010, BR-006).
//!
//! The behavioural tests are generic over a [`Fixture`]: a fresh CRM for a configuration, and its
//! persisted state as text (the document; for the store, the document and every Level 1 row).
//! `suites!` runs each of them on the document, on the store on SQLite and, when
//! `CRM_TEST_POSTGRES_URL` is set, on the store on PostgreSQL: code written against Level 1
//! behaves the same after promotion. Tests about the document itself, the store itself and the
//! migration helper (`promote`) come after the suite.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, TimeZone, Utc};
use nexus_crm::engine::EvalError;
use nexus_crm::ir::{Field, FieldType, Value as IrValue};
use nexus_crm::level1::{
    Action, Actor, ConfigProblem, Contact, ContactBackendMut, Crm, CrmConfig, CrmError, CrmEvent, CrmStore,
    EntityBuilder, FieldError, Fields, HasCrm, HistoryEntry, HookContext, Problem, TenantId, Veto, Violation,
};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row, SqliteConnection};
use support::db::{POSTGRES_URL_VAR, PgDatabase, postgres_url};

// ---------------------------------------------------------------------------------------------
// The harness

/// A backend under test.
trait Fixture {
    /// The backend its handles use.
    type Backend<'a>: ContactBackendMut
    where
        Self: 'a;

    /// A new, empty CRM with this configuration.
    fn new(config: CrmConfig) -> Self;

    /// A handle, as application code gets one.
    fn crm(&mut self) -> Crm<Self::Backend<'_>>;

    /// Everything persisted, as text: equal before and after iff nothing changed, byte for byte.
    fn state(&self) -> String;
}

/// A host as an application would write it, with its configuration in a field rather than a static.
struct Host {
    config: CrmConfig,
    document: Value,
}

impl HasCrm for Host {
    fn crm_config(&self) -> &CrmConfig {
        &self.config
    }
    fn crm_document(&self) -> &Value {
        &self.document
    }
    fn crm_document_mut(&mut self) -> &mut Value {
        &mut self.document
    }
}

/// Level 1: the host's own JSON document.
struct DocumentFixture(Host);

impl Fixture for DocumentFixture {
    type Backend<'a> = nexus_crm::level1::HostBackend<&'a mut Value>;

    fn new(config: CrmConfig) -> Self {
        Self(Host { config, document: Value::Null })
    }

    fn crm(&mut self) -> Crm<Self::Backend<'_>> {
        self.0.crm()
    }

    fn state(&self) -> String {
        serde_json::to_string(&self.0.document).unwrap_or_default()
    }
}

/// Level 2: the database store, promotion's target (US-010, BR-006), on one database per test.
struct StoreFixture {
    // Dropped first: closing the store before its database goes away.
    host: Host,
    db: TestDatabase,
}

impl StoreFixture {
    fn on(db: TestDatabase, config: CrmConfig) -> Self {
        let config = config.with_store(db.store(TENANT));
        Self { host: Host { config, document: Value::Null }, db }
    }

    fn state(&self) -> String {
        format!("document {}\n{}", self.host.document, self.db.dump())
    }
}

/// The store on a fresh SQLite file.
struct SqliteFixture(StoreFixture);

/// The store on a fresh PostgreSQL database (`CRM_TEST_POSTGRES_URL`).
struct PostgresFixture(StoreFixture);

impl Fixture for SqliteFixture {
    type Backend<'a> = nexus_crm::level1::HostBackend<&'a mut Value>;

    fn new(config: CrmConfig) -> Self {
        Self(StoreFixture::on(TestDatabase::sqlite(), config))
    }

    fn crm(&mut self) -> Crm<Self::Backend<'_>> {
        self.0.host.crm()
    }

    fn state(&self) -> String {
        self.0.state()
    }
}

impl Fixture for PostgresFixture {
    type Backend<'a> = nexus_crm::level1::HostBackend<&'a mut Value>;

    fn new(config: CrmConfig) -> Self {
        let db = TestDatabase::postgres().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set"));
        Self(StoreFixture::on(db, config))
    }

    fn crm(&mut self) -> Crm<Self::Backend<'_>> {
        self.0.host.crm()
    }

    fn state(&self) -> String {
        self.0.state()
    }
}

/// The tenant the store fixtures use.
const TENANT: &str = "acme";

/// A fresh, migrated database: a SQLite file, or a PostgreSQL database dropped afterwards.
struct TestDatabase {
    url: String,
    runtime: tokio::runtime::Runtime,
    _dir: Option<tempfile::TempDir>,
    _postgres: Option<PgDatabase>,
}

impl TestDatabase {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite:{}", dir.path().join("crm.db").display());
        Self { url, runtime: runtime(), _dir: Some(dir), _postgres: None }
    }

    /// `None` when `CRM_TEST_POSTGRES_URL` is not set.
    fn postgres() -> Option<Self> {
        let admin = postgres_url()?;
        let runtime = runtime();
        let database = runtime.block_on(PgDatabase::create(&admin));
        Some(Self { url: database.url.clone(), runtime, _dir: None, _postgres: Some(database) })
    }

    /// A store on this database for `tenant`.
    fn store(&self, tenant: &str) -> CrmStore {
        CrmStore::open(&self.url, TenantId::new(tenant))
            .unwrap_or_else(|e| panic!("store at {}: {e}", self.url))
    }

    fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    /// Runs SQL on a connection of its own, bypassing the CRM (to try what it never does).
    fn raw(&self, sql: &str) -> Result<u64, String> {
        let sql = AssertSqlSafe(sql.to_owned());
        self.runtime.block_on(async {
            let done = if self.is_postgres() {
                let mut conn = PgConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                conn.execute(sql).await.map(|r| r.rows_affected())
            } else {
                let mut conn = SqliteConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                conn.execute(sql).await.map(|r| r.rows_affected())
            };
            done.map_err(|e| e.to_string())
        })
    }

    /// Every Level 1 row, as text, in key order: equal iff nothing was written.
    fn dump(&self) -> String {
        const TABLES: [(&str, &str, &str); 3] = [
            (
                "crm_level1_hosts",
                "tenant_id, host_id, last_seq, last_position, origin, created_at",
                "tenant_id, host_id",
            ),
            (
                "crm_contacts",
                "tenant_id, id, instance_id, host_id, contact_id, position, name, email, phone, company, \
                 status, score, data, created_at, updated_at",
                "tenant_id, id",
            ),
            (
                "crm_contact_history",
                "tenant_id, host_id, seq, action, contact_id, before, after, actor_id, created_at",
                "tenant_id, host_id, seq",
            ),
        ];
        let mut out = String::new();
        for (table, columns, order) in TABLES {
            let casts: Vec<String> = columns.split(", ").map(|c| format!("CAST({c} AS TEXT)")).collect();
            let rows = self.rows(&format!("SELECT {} FROM {table} ORDER BY {order}", casts.join(", ")));
            out.push_str(&format!("{table}: {rows:?}\n"));
        }
        out
    }

    /// The rows of a query whose columns are all text (or NULL).
    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let sql = AssertSqlSafe(sql.to_owned());
        self.runtime.block_on(async {
            if self.is_postgres() {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect("query");
                rows.iter().map(|r| (0..r.len()).map(|i| r.try_get(i).expect("text")).collect()).collect()
            } else {
                let mut conn = SqliteConnection::connect(&self.url).await.expect("connect");
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect("query");
                rows.iter().map(|r| (0..r.len()).map(|i| r.try_get(i).expect("text")).collect()).collect()
            }
        })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Instantiates every generic test for every backend: the document, the store on SQLite, and the
/// store on PostgreSQL when `CRM_TEST_POSTGRES_URL` is set (skipped, and said so, otherwise).
macro_rules! suites {
    ($($test:ident),* $(,)?) => {
        mod document {
            $( #[test] fn $test() { super::$test::<super::DocumentFixture>(); } )*
        }
        mod sqlite {
            $( #[test] fn $test() { super::$test::<super::SqliteFixture>(); } )*
        }
        mod postgres {
            $( #[test] fn $test() {
                if super::postgres_url().is_some() {
                    super::$test::<super::PostgresFixture>();
                }
            } )*
        }
    };
}

suites!(
    us001_a_new_host_has_an_empty_crm_and_reading_writes_nothing,
    us002_fields_are_declared_as_a_list_of_names,
    us003_add_contact_validates_stores_records_and_emits,
    us004_can_evaluates_guards,
    us005_history_has_timestamp_actor_action_before_and_after,
    fr_l1_004_can_has_no_side_effects,
    fr_l1_006_a_guard_refuses_its_action,
    fr_l1_006_a_failing_guard_refuses_too,
    fr_l1_007_hooks_run_in_order_around_the_commit,
    fr_l1_007_hooks_see_before_and_after,
    a_before_hook_veto_changes_nothing,
    an_unknown_field_changes_nothing,
    a_wrong_type_changes_nothing,
    a_missing_required_field_changes_nothing,
    every_problem_is_reported_at_once,
    a_duplicate_id_changes_nothing,
    an_invalid_id_changes_nothing,
    data_that_is_not_an_object_changes_nothing,
    update_is_a_merge_patch,
    update_refusals_change_nothing,
    an_update_that_changes_nothing_is_not_recorded,
    remove_keeps_the_history,
    history_is_append_only_and_complete,
    typed_fields_are_validated_like_a_data_schema,
    export_returns_contacts_and_history,
    one_script_one_transcript,
);

/// Collects events and hook calls, and holds the clock, for one test.
#[derive(Clone, Default)]
struct Probe {
    events: Arc<Mutex<Vec<CrmEvent>>>,
    log: Arc<Mutex<Vec<String>>>,
    seconds: Arc<AtomicI64>,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().unwrap_or_default()
}

impl Probe {
    /// A configuration of the `contact` entity, with this probe as subscriber and clock.
    fn config(&self, entity: impl FnOnce(EntityBuilder) -> EntityBuilder) -> CrmConfig {
        let (events, log, seconds) = (self.events.clone(), self.log.clone(), self.seconds.clone());
        CrmConfig::builder()
            .entity("contact", entity)
            .subscribe(move |event| {
                lock(&log).push(format!("event {}", event.name()));
                lock(&events).push(event.clone());
            })
            .clock(move || start() + Duration::seconds(seconds.load(Ordering::SeqCst)))
            .build()
            .unwrap_or_else(|error| panic!("test configuration: {error}"))
    }

    /// The seed's fields, `name` required.
    fn seed(&self) -> CrmConfig {
        self.config(seed_fields)
    }

    fn events(&self) -> Vec<CrmEvent> {
        lock(&self.events).clone()
    }

    fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    fn advance(&self, seconds: i64) {
        self.seconds.fetch_add(seconds, Ordering::SeqCst);
    }

    fn now(&self) -> DateTime<Utc> {
        start() + Duration::seconds(self.seconds.load(Ordering::SeqCst))
    }

    /// A `before` hook that logs `name` and lets the action go ahead.
    fn before(
        &self,
        name: &'static str,
    ) -> impl Fn(&HookContext<'_>) -> Result<(), Veto> + Send + Sync + 'static {
        let log = self.log.clone();
        move |_| {
            lock(&log).push(name.to_owned());
            Ok(())
        }
    }

    /// An `after` hook that logs `name`.
    fn after(&self, name: &'static str) -> impl Fn(&HookContext<'_>) + Send + Sync + 'static {
        let log = self.log.clone();
        move |_| lock(&log).push(name.to_owned())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn seed_fields(e: EntityBuilder) -> EntityBuilder {
    e.fields(["name", "email", "phone", "company"]).required(["name"])
}

fn john() -> Value {
    json!({"name": "John Doe", "email": "john@example.com", "phone": "+1-555-0100", "company": "Acme Corp"})
}

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn actor(id: &str, roles: &[&str]) -> Actor {
    Actor { id: id.to_owned(), roles: roles.iter().map(|r| (*r).to_owned()).collect(), ..Actor::default() }
}

/// Runs `$op` on a fresh handle, expects it to be refused, and checks that nothing was stored
/// (byte for byte) and no event was published. Yields the error.
macro_rules! refused {
    ($f:expr, $probe:expr, |$crm:ident| $op:expr) => {{
        let state = $f.state();
        let events = $probe.events().len();
        let result = {
            #[allow(unused_mut)]
            let mut $crm = $f.crm();
            $op
        };
        let error = match result {
            Err(error) => error,
            Ok(value) => panic!("expected a refusal, got {value:?}"),
        };
        assert_eq!($f.state(), state, "a refused operation changed the stored state ({error})");
        assert_eq!($probe.events().len(), events, "a refused operation published an event ({error})");
        error
    }};
}

/// The field errors of an `InvalidData`.
fn field_errors(error: CrmError) -> Vec<FieldError> {
    match error {
        CrmError::InvalidData { errors } => errors,
        other => panic!("expected InvalidData, got {other:?}"),
    }
}

/// A field error in the engine's words, as Level 2 data would report it.
fn violation(field: &str, problem: Problem) -> FieldError {
    FieldError::Violation(Violation { field: field.into(), problem })
}

/// A `required` field that is absent or `null`.
fn missing(field: &str) -> FieldError {
    violation(field, Problem::Missing)
}

/// A value of the wrong kind.
fn wrong_type(field: &str, expected: &'static str, found: &'static str) -> FieldError {
    violation(field, Problem::WrongType { expected, found })
}

// ---------------------------------------------------------------------------------------------
// User stories

/// US-001 / FR-L1-001: a host gets a CRM with no tables and no migrations, and it works at once.
fn us001_a_new_host_has_an_empty_crm_and_reading_writes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let state = f.state();
    {
        let crm = f.crm();
        assert_eq!(crm.contacts().ok(), Some(vec![]));
        assert_eq!(crm.history().ok(), Some(vec![]));
        assert_eq!(crm.contact("anyone").ok(), Some(None));
        assert!(crm.can("add"));
    }
    assert_eq!(f.state(), state, "reading must not write");
}

/// US-002 / FR-L1-002: fields are a list of names; untyped names are string fields, absent
/// fields (or `null`) are simply not stored.
fn us002_fields_are_declared_as_a_list_of_names<F: Fixture>() {
    let probe = Probe::default();
    let config = probe.seed();
    let declared: Vec<(&str, &FieldType, bool)> =
        config.schema().fields().iter().map(|f| (f.name.as_str(), &f.ty, f.required)).collect();
    assert_eq!(
        declared,
        [
            ("name", &FieldType::String, true),
            ("email", &FieldType::String, false),
            ("phone", &FieldType::String, false),
            ("company", &FieldType::String, false),
        ]
    );
    let mut f = F::new(config);
    let ann = f.crm().add_contact(json!({"name": "Ann", "phone": null})).expect("added");
    assert_eq!(ann.fields, fields(json!({"name": "Ann"})));
}

/// US-003 / FR-L1-003: `add_contact` validates, stores, records and emits `ContactCreated`.
fn us003_add_contact_validates_stores_records_and_emits<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    // Keys in any order; the contact keeps the declared order.
    let data = json!({"company": "Acme Corp", "phone": "+1-555-0100", "email": "john@example.com", "name": "John Doe"});
    let contact = f.crm().add_contact(data).expect("added");
    assert!(!contact.id.as_str().is_empty());
    assert_eq!(contact.fields, fields(john()));
    assert_eq!(contact.fields.keys().collect::<Vec<_>>(), ["name", "email", "phone", "company"]);

    let crm = f.crm();
    assert_eq!(crm.contacts().ok(), Some(vec![contact.clone()]));
    assert_eq!(crm.contact(&contact.id).ok(), Some(Some(contact.clone())));
    let history = crm.history().expect("history");
    drop(crm);
    assert_eq!(history.len(), 1);

    let events = probe.events();
    assert_eq!(events.len(), 1);
    let CrmEvent::ContactCreated { contact: created, entry } = &events[0] else {
        panic!("expected ContactCreated, got {:?}", events[0]);
    };
    assert_eq!(created, &contact);
    assert_eq!(entry, &history[0]);
}

/// US-004 / FR-L1-004: `can(action)` answers from the guards, with or without a contact.
fn us004_can_evaluates_guards<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| {
        seed_fields(e)
            .guard("delete", "has_role('manager')")
            .guard_fn("edit", |c| c.get_str("company") != Some("Archived Inc"))
            .guard("export", "has_role('sales') OR has_role('manager')")
    }));
    let archived = f.crm().add_contact(json!({"name": "Old", "company": "Archived Inc"})).expect("added");
    let active = f.crm().add_contact(json!({"name": "New", "company": "Acme"})).expect("added");

    let crm = f.crm();
    assert!(crm.can("add"), "an unguarded built-in action is allowed");
    assert!(crm.can("edit"), "without a contact, a field guard sees no fields");
    assert!(!crm.can("delete"), "the system actor is no manager");
    assert!(!crm.can("export"));
    assert!(crm.can_on("edit", &active));
    assert!(!crm.can_on("edit", &archived));
    assert!(
        matches!(crm.check("edit", Some(&archived)), Err(CrmError::Refused { ref action, ref guard }) if action == "edit" && guard == "#1")
    );
    assert!(!crm.can("fly"), "an action nobody declared is refused");
    assert!(matches!(crm.check("fly", None), Err(CrmError::UnknownAction { .. })));
    assert!(
        matches!(crm.check("exprot", None), Err(CrmError::UnknownAction { help: Some(ref h), .. }) if h.contains("`export`"))
    );
    drop(crm);

    let crm = f.crm().with_actor(actor("maria", &["manager"]));
    assert!(crm.can("delete"));
    assert!(crm.can("export"));
    drop(crm);
    assert!(f.crm().with_actor(actor("sam", &["sales"])).can("export"));
}

/// US-005 / FR-L1-005: every change with its timestamp, actor, action, and the values before and after.
fn us005_history_has_timestamp_actor_action_before_and_after<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let t0 = probe.now();
    let john_contact = f.crm().add_contact(john()).expect("added");
    let id = john_contact.id.clone();
    probe.advance(60);
    f.crm()
        .with_actor(actor("alice", &[]))
        .update_contact(&id, json!({"company": "Globex"}))
        .expect("updated");
    probe.advance(60);
    f.crm().with_actor(actor("bob", &[])).remove_contact(&id).expect("removed");

    let globex = fields(
        json!({"name": "John Doe", "email": "john@example.com", "phone": "+1-555-0100", "company": "Globex"}),
    );
    let history = f.crm().history().expect("history");
    let summary: Vec<_> = history
        .iter()
        .map(|e| {
            (e.seq, e.at, e.actor.as_str(), e.action, e.contact.clone(), e.before.clone(), e.after.clone())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, t0, "system", Action::Add, id.clone(), None, Some(fields(john()))),
            (
                2,
                t0 + Duration::seconds(60),
                "alice",
                Action::Edit,
                id.clone(),
                Some(fields(john())),
                Some(globex.clone())
            ),
            (3, t0 + Duration::seconds(120), "bob", Action::Delete, id.clone(), Some(globex), None),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Guards and hooks

/// FR-L1-004: `can` and `check` store nothing, run no hook, publish nothing.
fn fr_l1_004_can_has_no_side_effects<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| {
        seed_fields(e)
            .guard("edit", "data.company != 'Archived Inc'")
            .guard_fn("delete", |_| false)
            .before("edit", probe.before("before edit"))
            .after("edit", probe.after("after edit"))
            .before("delete", probe.before("before delete"))
    }));
    let contact = f.crm().add_contact(john()).expect("added");
    let (state, log, events) = (f.state(), probe.log(), probe.events());

    {
        let crm = f.crm();
        for action in ["add", "edit", "delete", "nonsense"] {
            let _ = crm.can(action);
            let _ = crm.can_on(action, &contact);
            let _ = crm.check(action, Some(&contact));
        }
    }
    assert_eq!(f.state(), state);
    assert_eq!(f.crm().history().map(|h| h.len()).ok(), Some(1));
    assert_eq!(probe.log(), log, "no hook may run");
    assert_eq!(probe.events(), events, "no event may be published");
}

/// FR-L1-006: a guard (expression or closure) refuses its action, before anything happens.
fn fr_l1_006_a_guard_refuses_its_action<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| {
        seed_fields(e)
            .field("status", FieldType::String)
            // The seed's `fn($contact) => $contact->status == 'active'`.
            .guard_fn("edit", |contact| contact.get_str("status") == Some("active"))
            .guard("delete", "data.company != 'Acme Corp'")
            .guard("add", "NOT ends_with(lower(data.email), '@gmail.com')")
            .before("edit", probe.before("before edit"))
    }));
    let archived = f
        .crm()
        .add_contact(json!({"name": "Old", "company": "Acme Corp", "status": "archived"}))
        .expect("added");

    let error = refused!(f, probe, |crm| crm.update_contact(&archived.id, json!({"phone": "1"})));
    assert!(
        matches!(error, CrmError::Refused { ref action, ref guard } if action == "edit" && guard == "#1"),
        "{error:?}"
    );
    assert!(probe.log().iter().all(|line| line != "before edit"), "hooks run only after the guards hold");

    let error = refused!(f, probe, |crm| crm.remove_contact(&archived.id));
    assert!(
        matches!(error, CrmError::Refused { ref action, ref guard } if action == "delete" && guard == "`data.company != 'Acme Corp'`"),
        "{error:?}"
    );

    let error = refused!(f, probe, |crm| crm.add_contact(json!({"name": "Joe", "email": "Joe@GMail.com"})));
    assert!(matches!(error, CrmError::Refused { ref action, .. } if action == "add"), "{error:?}");
    assert!(f.crm().add_contact(json!({"name": "Joe", "email": "joe@acme.com"})).is_ok());
}

/// A guard that cannot be evaluated refuses (never a silent `false` or `true`).
fn fr_l1_006_a_failing_guard_refuses_too<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| {
        e.fields(["name"])
            .field("score", FieldType::Number)
            .field("count", FieldType::Number)
            .guard("edit", "data.score / data.count > 1")
    }));
    let contact = f.crm().add_contact(json!({"name": "Ann", "score": 5, "count": 0})).expect("added");
    let error = refused!(f, probe, |crm| crm.update_contact(&contact.id, json!({"name": "Anne"})));
    assert!(matches!(error, CrmError::GuardFailed { source: EvalError::DivisionByZero, .. }), "{error:?}");
    assert!(!f.crm().can_on("edit", &contact));
}

/// FR-L1-007: hooks are chainable and run in order: `before`s, the commit, `after`s, then the event.
fn fr_l1_007_hooks_run_in_order_around_the_commit<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| {
        seed_fields(e)
            .before("add", probe.before("before 1"))
            .after("add", probe.after("after 1"))
            .before("add", probe.before("before 2"))
            .after("add", probe.after("after 2"))
            .after("edit", probe.after("after edit"))
    }));
    f.crm().add_contact(john()).expect("added");
    assert_eq!(probe.log(), ["before 1", "before 2", "after 1", "after 2", "event ContactCreated"]);
}

/// Hooks see the action, the actor, the time, and the contact before and after.
fn fr_l1_007_hooks_see_before_and_after<F: Fixture>() {
    type Seen = (Action, String, DateTime<Utc>, Option<Contact>, Option<Contact>);
    let probe = Probe::default();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = |seen: &Arc<Mutex<Vec<Seen>>>| {
        let seen = seen.clone();
        move |ctx: &HookContext<'_>| {
            lock(&seen).push((
                ctx.action,
                ctx.actor.id.clone(),
                ctx.at,
                ctx.before.cloned(),
                ctx.after.cloned(),
            ));
        }
    };
    let (on_add, on_edit, on_delete) = (record(&seen), record(&seen), record(&seen));
    let mut f = F::new(probe.config(|e| {
        seed_fields(e)
            .before("add", move |ctx| {
                on_add(ctx);
                Ok(())
            })
            .after("edit", on_edit)
            .after("delete", on_delete)
    }));
    let added = f.crm().with_actor(actor("alice", &[])).add_contact(john()).expect("added");
    probe.advance(5);
    let edited = f.crm().update_contact(&added.id, json!({"phone": null})).expect("updated");
    f.crm().remove_contact(&added.id).expect("removed");
    let t0 = start();
    let t5 = t0 + Duration::seconds(5);
    assert_eq!(
        *lock(&seen),
        [
            (Action::Add, "alice".to_owned(), t0, None, Some(added.clone())),
            (Action::Edit, "system".to_owned(), t5, Some(added), Some(edited.clone())),
            (Action::Delete, "system".to_owned(), t5, Some(edited), None),
        ]
    );
}

/// A `before` hook's veto stops the action, later hooks and the event; nothing is stored.
fn a_before_hook_veto_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let log = probe.log.clone();
    let mut f = F::new(probe.config(|e| {
        seed_fields(e)
            .before("add", probe.before("before 1"))
            .before("add", move |ctx| {
                lock(&log).push("before 2".to_owned());
                match ctx.after.and_then(|c| c.get_str("email")) {
                    Some(email) if email.ends_with("@mailinator.com") => {
                        Err(Veto::new("no throwaway addresses"))
                    }
                    _ => Ok(()),
                }
            })
            .before("add", probe.before("before 3"))
            .after("add", probe.after("after"))
            .before("delete", |_| Err("contacts are kept for audits".into()))
    }));
    let error =
        refused!(f, probe, |crm| crm.add_contact(json!({"name": "Spam", "email": "x@mailinator.com"})));
    assert!(
        matches!(error, CrmError::Vetoed { ref action, ref reason } if action == "add" && reason == "no throwaway addresses"),
        "{error:?}"
    );
    assert_eq!(probe.log(), ["before 1", "before 2"]);

    let kept = f.crm().add_contact(john()).expect("added");
    let error = refused!(f, probe, |crm| crm.remove_contact(&kept.id));
    assert!(matches!(error, CrmError::Vetoed { ref action, .. } if action == "delete"), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// Bad input: refused with a typed error, nothing stored, nothing published

fn an_unknown_field_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    f.crm().add_contact(john()).expect("added");
    let error = refused!(f, probe, |crm| crm.add_contact(json!({"name": "Ann", "emial": "ann@example.com"})));
    assert_eq!(
        field_errors(error),
        [FieldError::Unknown { field: "emial".into(), help: Some("did you mean `email`?".into()) }]
    );
}

fn a_wrong_type_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let error = refused!(f, probe, |crm| crm.add_contact(json!({"name": "Ann", "phone": 5550100})));
    assert_eq!(field_errors(error), [wrong_type("phone", "string", "a number")]);
}

fn a_missing_required_field_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    for data in [json!({"email": "ann@example.com"}), json!({"name": null, "email": "ann@example.com"})] {
        let error = refused!(f, probe, |crm| crm.add_contact(data));
        assert_eq!(field_errors(error), [missing("name")]);
    }
}

fn every_problem_is_reported_at_once<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let error = refused!(f, probe, |crm| crm.add_contact(json!({"email": 1, "fax": "2"})));
    // The engine's words for what Level 2 data can get wrong too, Level 1's for the rest.
    assert_eq!(
        error.to_string(),
        "invalid contact data: field `email` must be of type string, found a number; \
         unknown field `fax`; field `name` is required"
    );
    let errors = field_errors(error);
    assert!(
        matches!(
            errors.as_slice(),
            [
                FieldError::Violation(Violation { problem: Problem::WrongType { .. }, .. }),
                FieldError::Unknown { .. },
                FieldError::Violation(Violation { problem: Problem::Missing, .. })
            ]
        ),
        "{errors:?}"
    );
}

/// A caller may supply the id (an import from another system); an id in use is refused, and so
/// is changing a contact's id.
fn a_duplicate_id_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let first = f.crm().add_contact(json!({"id": "crm-7", "name": "Ann"})).expect("added");
    assert_eq!(first.id.as_str(), "crm-7");
    let error = refused!(f, probe, |crm| crm.add_contact(json!({"id": "crm-7", "name": "Bob"})));
    assert!(matches!(error, CrmError::DuplicateId { ref id } if id.as_str() == "crm-7"), "{error:?}");

    let generated = f.crm().add_contact(json!({"name": "Cy"})).expect("added");
    let error =
        refused!(f, probe, |crm| crm.add_contact(json!({"id": generated.id.as_str(), "name": "Cy again"})));
    assert!(matches!(error, CrmError::DuplicateId { .. }), "{error:?}");

    let error = refused!(f, probe, |crm| crm.update_contact("crm-7", json!({"id": generated.id.as_str()})));
    assert_eq!(field_errors(error), [FieldError::Immutable { field: "id".into() }]);
    // Echoing the id back is not a change.
    assert!(f.crm().update_contact("crm-7", json!({"id": "crm-7", "name": "Anne"})).is_ok());
}

fn an_invalid_id_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    for id in [json!(42), json!(""), json!("x".repeat(129)), json!("a\nb")] {
        let error = refused!(f, probe, |crm| crm.add_contact(json!({"id": id, "name": "Ann"})));
        assert!(matches!(error, CrmError::InvalidId { .. }), "{error:?}");
    }
    // `null` means absent, as for fields: an id is generated.
    assert!(f.crm().add_contact(json!({"id": null, "name": "Ann"})).is_ok());
}

fn data_that_is_not_an_object_changes_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let error = refused!(f, probe, |crm| crm.add_contact(json!(["John Doe"])));
    assert!(matches!(error, CrmError::NotAnObject { found: "an array" }), "{error:?}");
    let contact = f.crm().add_contact(john()).expect("added");
    let error = refused!(f, probe, |crm| crm.update_contact(&contact.id, json!("Globex")));
    assert!(matches!(error, CrmError::NotAnObject { found: "a string" }), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// Update and remove

/// `update_contact` is a merge patch: keys set fields, `null` removes them, the rest stays.
fn update_is_a_merge_patch<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let contact = f.crm().add_contact(json!({"name": "John Doe", "phone": "+1-555-0100"})).expect("added");
    let updated =
        f.crm().update_contact(&contact.id, json!({"phone": null, "company": "Globex"})).expect("updated");
    assert_eq!(updated.id, contact.id);
    assert_eq!(updated.fields, fields(json!({"name": "John Doe", "company": "Globex"})));
    assert_eq!(f.crm().contact(&contact.id).ok(), Some(Some(updated.clone())));
    let events = probe.events();
    assert!(
        matches!(events.last(), Some(CrmEvent::ContactUpdated { contact, entry }) if *contact == updated && entry.seq == 2)
    );
}

fn update_refusals_change_nothing<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let contact = f.crm().add_contact(john()).expect("added");
    let error = refused!(f, probe, |crm| crm.update_contact(&contact.id, json!({"name": null})));
    assert_eq!(field_errors(error), [missing("name")]);
    let error = refused!(f, probe, |crm| crm.update_contact(&contact.id, json!({"fax": "1"})));
    assert!(matches!(field_errors(error).as_slice(), [FieldError::Unknown { .. }]));
    let error = refused!(f, probe, |crm| crm.update_contact("nobody", json!({"name": "X"})));
    assert!(matches!(error, CrmError::NotFound { ref id } if id == "nobody"), "{error:?}");
}

/// A patch that changes nothing is not a change: no history entry, no event, no hooks.
fn an_update_that_changes_nothing_is_not_recorded<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| seed_fields(e).before("edit", probe.before("before edit"))));
    let contact = f.crm().add_contact(json!({"name": "Ann", "email": "ann@example.com"})).expect("added");
    let (state, events) = (f.state(), probe.events().len());
    let patch = json!({"email": "ann@example.com", "phone": null});
    let same = f.crm().update_contact(&contact.id, patch).expect("no-op");
    assert_eq!(same, contact);
    assert_eq!(f.state(), state);
    assert_eq!(probe.events().len(), events);
    assert!(probe.log().iter().all(|line| line != "before edit"));
}

/// Removing a contact keeps its history; it cannot be removed or edited again.
fn remove_keeps_the_history<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let contact = f.crm().add_contact(john()).expect("added");
    let removed = f.crm().remove_contact(&contact.id).expect("removed");
    assert_eq!(removed, contact);
    assert_eq!(f.crm().contacts().ok(), Some(vec![]));
    let history = f.crm().history().expect("history");
    assert_eq!(history.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Add, Action::Delete]);
    assert_eq!(history[1].before.as_ref(), Some(&contact.fields));
    assert!(
        matches!(probe.events().last(), Some(CrmEvent::ContactRemoved { contact: c, .. }) if *c == contact)
    );

    let error = refused!(f, probe, |crm| crm.remove_contact(&contact.id));
    assert!(matches!(error, CrmError::NotFound { .. }), "{error:?}");
    let error = refused!(f, probe, |crm| crm.update_contact(&contact.id, json!({"name": "Back"})));
    assert!(matches!(error, CrmError::NotFound { .. }), "{error:?}");
}

/// History only grows: each change appends exactly one entry numbered after the last, earlier
/// entries never change, refusals add nothing, and the entries replay to the current contacts.
fn history_is_append_only_and_complete<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let mut seen: Vec<HistoryEntry> = Vec::new();
    let mut step = |f: &mut F, op: &dyn Fn(&mut F) -> bool| {
        let changed = op(f);
        let history = f.crm().history().expect("history");
        assert_eq!(history[..seen.len()], seen[..], "an earlier entry changed");
        assert_eq!(history.len(), seen.len() + usize::from(changed));
        if let Some(last) = history.last() {
            assert_eq!(last.seq, history.len() as u64);
        }
        seen = history;
    };
    step(&mut f, &|f| f.crm().add_contact(json!({"id": "a", "name": "Ann"})).is_ok());
    step(&mut f, &|f| f.crm().add_contact(json!({"id": "b", "name": "Bob"})).is_ok());
    step(&mut f, &|f| f.crm().add_contact(json!({"id": "a", "name": "Dup"})).is_ok());
    step(&mut f, &|f| f.crm().update_contact("a", json!({"email": "ann@example.com"})).is_ok());
    step(&mut f, &|f| f.crm().update_contact("a", json!({"email": 3})).is_ok());
    step(&mut f, &|f| f.crm().remove_contact("b").is_ok());
    step(&mut f, &|f| f.crm().remove_contact("b").is_ok());

    // A caller's copy is a copy.
    let mut copy = f.crm().history().expect("history");
    copy.clear();
    assert_eq!(f.crm().history().map(|h| h.len()).ok(), Some(4));

    // Replaying `after` values gives exactly the current contacts.
    let mut replayed: Vec<(String, Fields)> = Vec::new();
    for entry in f.crm().history().expect("history") {
        replayed.retain(|(id, _)| id != entry.contact.as_str());
        if let Some(after) = entry.after {
            replayed.push((entry.contact.as_str().to_owned(), after));
        }
    }
    let current: Vec<(String, Fields)> = f
        .crm()
        .contacts()
        .expect("contacts")
        .into_iter()
        .map(|c| (c.id.as_str().to_owned(), c.fields))
        .collect();
    assert_eq!(replayed, current);
}

/// Typed fields use the Level 2 `dataSchema` rules: type, bounds, enum, pattern, dates, array items.
fn typed_fields_are_validated_like_a_data_schema<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.config(|e| {
        e.fields(["name"])
            .declare(Field { min: Some(0.0), max: Some(100.0), ..Field::new("score", FieldType::Integer) })
            .declare(Field {
                allowed: vec![IrValue::from("active"), IrValue::from("archived")],
                ..Field::new("status", FieldType::String)
            })
            .declare(Field {
                pattern: Some(r"^\+?[0-9 -]+$".into()),
                ..Field::new("phone", FieldType::String)
            })
            .field("born", FieldType::Date)
            .field("seen", FieldType::DateTime)
            .field("tags", FieldType::Array(Some(Box::new(FieldType::String))))
            .field("vip", FieldType::Boolean)
    }));
    let good = json!({"name": "Ann", "score": 100, "status": "active", "phone": "+1 555-0100",
        "born": "1990-04-01", "seen": "2026-01-05T09:00:00Z", "tags": ["a", "b"], "vip": false});
    assert!(f.crm().add_contact(good).is_ok());
    assert!(f.crm().add_contact(json!({"name": "Whole", "score": 7.0})).is_ok(), "7.0 is a whole number");

    let error = refused!(f, probe, |crm| crm
        .add_contact(json!({"name": "Bad", "score": 101, "status": "gone",
        "phone": "call me", "born": "yesterday", "seen": "2026-01-05", "tags": ["a", 2], "vip": "yes"})));
    assert_eq!(
        field_errors(error),
        [
            violation("score", Problem::AboveMax { max: 100.0, found: 101.0, length: false }),
            violation(
                "status",
                Problem::NotAllowed { allowed: vec![r#""active""#.into(), r#""archived""#.into()] }
            ),
            violation("phone", Problem::PatternMismatch { pattern: r"^\+?[0-9 -]+$".into() }),
            violation("born", Problem::InvalidTemporal { expected: "a date" }),
            violation("seen", Problem::InvalidTemporal { expected: "a date-time" }),
            wrong_type("tags[1]", "string", "a number"),
            wrong_type("vip", "boolean", "a string"),
        ]
    );
    let error = refused!(f, probe, |crm| crm.add_contact(json!({"name": "Frac", "score": 1.5})));
    assert_eq!(field_errors(error), [wrong_type("score", "integer", "a decimal")]);
}

/// What a migration to the store needs: every contact and every history entry, as they are.
fn export_returns_contacts_and_history<F: Fixture>() {
    let probe = Probe::default();
    let mut f = F::new(probe.seed());
    let a = f.crm().add_contact(json!({"name": "Ann"})).expect("added");
    let b = f.crm().add_contact(json!({"name": "Bob"})).expect("added");
    f.crm().remove_contact(&a.id).expect("removed");
    let (contacts, history) = f.crm().export().expect("export");
    assert_eq!(contacts, [b]);
    assert_eq!(history, f.crm().history().expect("history"));
    assert_eq!(history.len(), 3);
}

/// The same script on this backend and on the document gives the same transcript: every result
/// and error, hook call, event, `can` answer, contact and history entry, in order.
fn one_script_one_transcript<F: Fixture>() {
    assert_eq!(transcript::<F>(), transcript::<DocumentFixture>());
}

fn transcript<F: Fixture>() -> Vec<String> {
    let probe = Probe::default();
    let log = probe.log.clone();
    let mut f = F::new(probe.config(|e| {
        // `website` first: PostgreSQL's JSONB orders keys by length, so field order is tested too.
        seed_fields(e.fields(["website"]))
            .field("status", FieldType::String)
            .guard("delete", "has_role('manager')")
            .guard_fn("edit", |c| c.get_str("status") != Some("locked"))
            .before("add", probe.before("before add"))
            .after("add", probe.after("after add"))
            .before("edit", move |ctx| {
                lock(&log).push(format!("before edit {:?}", ctx.after.map(|c| &c.fields)));
                match ctx.after.and_then(|c| c.get_str("email")) {
                    Some(email) if email.ends_with("@spam.example") => Err(Veto::new("spam")),
                    _ => Ok(()),
                }
            })
            .after("edit", probe.after("after edit"))
            .after("delete", probe.after("after delete"))
    }));
    let manager = || actor("maria", &["manager"]);
    let mut out = Vec::new();
    let mut record = |what: &str, result: String| out.push(format!("{what}: {result}"));
    let show = |r: Result<Contact, CrmError>| match r {
        Ok(c) => format!("ok {}", c.to_json()),
        Err(e) => format!("err {e}"),
    };
    record(
        "add a",
        show(
            f.crm()
                .add_contact(json!({"id": "a", "name": "Ann", "status": "open", "website": "ann.example"})),
        ),
    );
    probe.advance(1);
    record(
        "add b",
        show(f.crm().add_contact(json!({"id": "b", "name": "Bob", "email": "bob@acme.example"}))),
    );
    record("add a again", show(f.crm().add_contact(json!({"id": "a", "name": "Dup"}))));
    record("add bad", show(f.crm().add_contact(json!({"name": 7, "fax": "1"}))));
    probe.advance(1);
    record(
        "edit a",
        show(f.crm().with_actor(actor("alice", &[])).update_contact("a", json!({"status": "locked"}))),
    );
    record("edit a locked", show(f.crm().update_contact("a", json!({"name": "Anne"}))));
    record("edit b spam", show(f.crm().update_contact("b", json!({"email": "x@spam.example"}))));
    record("edit b same", show(f.crm().update_contact("b", json!({"name": "Bob"}))));
    record("remove b as system", show(f.crm().remove_contact("b")));
    probe.advance(1);
    record("remove b as manager", show(f.crm().with_actor(manager()).remove_contact("b")));
    record("remove b again", show(f.crm().with_actor(manager()).remove_contact("b")));
    record("add b anew", show(f.crm().add_contact(json!({"id": "b", "name": "Bea"}))));
    {
        let crm = f.crm();
        let a = crm.contact("a").ok().flatten().map(|c| crm.can_on("edit", &c));
        record("can", format!("{} {} {a:?}", crm.can("delete"), crm.can("fly")));
        record(
            "contacts",
            format!("{:?}", crm.contacts().map(|cs| cs.iter().map(Contact::to_json).collect::<Vec<_>>())),
        );
        record("history", format!("{:?}", crm.history()));
    }
    out.extend(probe.log());
    out.extend(probe.events().iter().map(|e| format!("{e:?}")));
    out
}

// ---------------------------------------------------------------------------------------------
// The document backend itself

/// FR-L1-002: everything lives in the host's JSON document, in a stable, versioned layout.
#[test]
fn fr_l1_002_contacts_and_history_live_in_the_host_document() {
    let probe = Probe::default();
    let mut host = Host { config: probe.seed(), document: Value::Null };
    host.crm().add_contact(json!({"id": "c-1", "name": "John Doe", "company": "Acme Corp"})).expect("added");
    probe.advance(90);
    host.crm()
        .with_actor(actor("alice", &[]))
        .update_contact("c-1", json!({"company": "Globex"}))
        .expect("updated");
    assert_eq!(
        host.document,
        json!({
            "version": 1,
            "contacts": {"c-1": {"name": "John Doe", "company": "Globex"}},
            "history": [
                {"seq": 1, "at": "2026-01-05T09:00:00Z", "actor": "system", "action": "add", "contact": "c-1",
                 "before": null, "after": {"name": "John Doe", "company": "Acme Corp"}},
                {"seq": 2, "at": "2026-01-05T09:01:30Z", "actor": "alice", "action": "edit", "contact": "c-1",
                 "before": {"name": "John Doe", "company": "Acme Corp"}, "after": {"name": "John Doe", "company": "Globex"}},
            ],
        })
    );
}

/// BR-007: one CRM per host. Handles of one host share it; another host's CRM is separate.
#[test]
fn br007_one_crm_per_host() {
    let probe = Probe::default();
    let mut ada = Host { config: probe.seed(), document: Value::Null };
    let mut bob = Host { config: probe.seed(), document: Value::Null };
    let contact = ada.crm().add_contact(john()).expect("added");
    assert_eq!(
        ada.crm().contacts().ok(),
        Some(vec![contact.clone()]),
        "a second handle sees the first one's contact"
    );
    assert_eq!(bob.crm().contacts().ok(), Some(vec![]));
    assert!(matches!(bob.crm().remove_contact(&contact.id), Err(CrmError::NotFound { .. })));
    bob.crm()
        .add_contact(json!({"id": contact.id.as_str(), "name": "Same id, other host"}))
        .expect("ids are per host");
    assert_eq!(ada.crm().history().map(|h| h.len()).ok(), Some(1));
}

/// `crm_view` reads through a shared reference (and has no way to write).
#[test]
fn crm_view_reads_through_a_shared_reference() {
    let probe = Probe::default();
    let mut host = Host { config: probe.seed(), document: Value::Null };
    let contact = host.crm().add_contact(john()).expect("added");
    let shared: &Host = &host;
    assert_eq!(shared.crm_view().contacts().ok(), Some(vec![contact]));
    assert!(shared.crm_view().can("edit"));
}

/// `null` and `{}` both start an empty CRM; reading either writes nothing.
#[test]
fn an_empty_document_is_an_empty_crm() {
    let probe = Probe::default();
    for empty in [Value::Null, json!({})] {
        let mut host = Host { config: probe.seed(), document: empty.clone() };
        assert_eq!(host.crm().contacts().ok(), Some(vec![]));
        assert_eq!(host.document, empty);
        host.crm().add_contact(john()).expect("added");
        assert_eq!(host.document["version"], json!(1));
    }
}

/// A damaged or foreign document is reported, never guessed at or overwritten.
#[test]
fn a_damaged_document_is_reported_and_left_alone() {
    let probe = Probe::default();
    let mut good = Host { config: probe.seed(), document: Value::Null };
    good.crm().add_contact(json!({"id": "c-1", "name": "Ann"})).expect("added");
    good.crm().add_contact(json!({"id": "c-2", "name": "Bob"})).expect("added");

    let mut skipped_seq = good.document.clone();
    skipped_seq["history"][1]["seq"] = json!(3);
    let mut bad_contact = good.document.clone();
    bad_contact["contacts"]["c-1"] = json!("Ann");
    let mut extra_key = good.document.clone();
    extra_key["notes"] = json!("mine");
    let mut edited_shape = good.document.clone();
    edited_shape["history"][0]["before"] = json!({"name": "Eve"});

    for document in [
        json!("hello"),
        json!([1]),
        json!({"contacts": {}}),
        skipped_seq,
        bad_contact,
        extra_key,
        edited_shape,
    ] {
        let mut host = Host { config: probe.seed(), document: document.clone() };
        let read = host.crm().export();
        assert!(matches!(read, Err(CrmError::CorruptDocument { .. })), "{document}: {read:?}");
        let write = host.crm().add_contact(json!({"name": "New"}));
        assert!(matches!(write, Err(CrmError::CorruptDocument { .. })), "{document}: {write:?}");
        assert_eq!(host.document, document, "a damaged document is never rewritten");
    }

    let mut newer = good.document.clone();
    newer["version"] = json!(2);
    let mut host = Host { config: probe.seed(), document: newer };
    assert!(matches!(host.crm().contacts(), Err(CrmError::UnsupportedVersion { found: 2, supported: 1 })));
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Building a configuration reports every problem at once, each typed.
#[test]
fn configuration_problems_are_all_reported() {
    let error = CrmConfig::builder()
        .entity("contact", |e| {
            e.fields(["name", "id", "name"])
                .declare(Field {
                    name: "code".into(),
                    ty: FieldType::String,
                    required: false,
                    min: None,
                    max: None,
                    allowed: Vec::new(),
                    pattern: Some("([".into()),
                    label: None,
                })
                .required(["nmae"])
                .guard("dellete", "true")
                .guard("edit", "data.name > 5")
                .before("create", |_| Ok(()))
        })
        .entity("lead", |e| e.fields(["score"]))
        .build()
        .map(|_| ())
        .expect_err("invalid");
    let kinds: Vec<String> = error
        .problems
        .iter()
        .map(|p| match p {
            ConfigProblem::ReservedField { field } => format!("reserved {field}"),
            ConfigProblem::DuplicateField { field } => format!("duplicate {field}"),
            ConfigProblem::UnknownRequired { field, help } => {
                format!("required {field}: {}", help.as_deref().unwrap_or(""))
            }
            ConfigProblem::InvalidPattern { field, .. } => format!("pattern {field}"),
            ConfigProblem::UnknownAction { action, help } => {
                format!("action {action}: {}", help.as_deref().unwrap_or(""))
            }
            ConfigProblem::InvalidGuard { action, .. } => format!("guard {action}"),
            ConfigProblem::UnsupportedEntity { entity } => format!("entity {entity}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "reserved id",
            "duplicate name",
            "required nmae: did you mean `name`?",
            "pattern code",
            "action dellete: did you mean `delete`?",
            "guard edit",
            "action create: declared actions: `add`, `delete`, `edit`",
            "entity lead",
        ]
    );
    assert!(matches!(
        CrmConfig::builder().build().map(|_| ()).map_err(|e| e.problems),
        Err(ref problems) if matches!(problems.as_slice(), [ConfigProblem::MissingContactEntity])
    ));
}

/// A guard expression is compiled when the configuration is built; its diagnostics (with codes
/// and spans into the expression) come with the error. An undeclared field is refused too: at
/// Level 1 it can never hold a value.
#[test]
fn guard_expressions_are_checked_when_the_configuration_is_built() {
    for (guard, code) in [
        ("data.name > 5", "CRM0302"),
        ("data.status == 'active'", "CRM0303"),
        ("data.name ==", "CRM0301"),
        ("shout(data.name)", "CRM0304"),
    ] {
        let error = CrmConfig::builder()
            .entity("contact", |e| seed_fields(e).guard("edit", guard))
            .build()
            .map(|_| ())
            .expect_err("invalid guard");
        let [ConfigProblem::InvalidGuard { action, report }] = error.problems.as_slice() else {
            panic!("{guard}: expected one InvalidGuard, got {:?}", error.problems);
        };
        assert_eq!(action, "edit");
        assert_eq!(&*report.source, guard);
        let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert!(codes.contains(&code), "{guard}: expected {code}, got {codes:?}");
    }
}

/// Guards of the host's own actions are fine; they are asked with `can`.
#[test]
fn custom_actions_can_be_guarded() {
    let probe = Probe::default();
    let config = probe.config(|e| seed_fields(e).guard("export", "has_permission('contacts.export')"));
    let mut host = Host { config, document: Value::Null };
    assert!(!host.crm().can("export"));
    let exporter =
        Actor { id: "eve".into(), permissions: vec!["contacts.export".into()], ..Actor::default() };
    assert!(host.crm().with_actor(exporter).can("export"));
}

// ---------------------------------------------------------------------------------------------
// The database store itself, on SQLite and (when `CRM_TEST_POSTGRES_URL` is set) PostgreSQL

/// Instantiates tests that take a fresh [`TestDatabase`] for each database.
macro_rules! on_each_database {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $test() { super::$test(super::TestDatabase::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] fn $test() {
                if let Some(db) = super::TestDatabase::postgres() {
                    super::$test(db);
                }
            } )*
        }
    };
}

on_each_database!(
    store_history_is_append_only_in_the_database,
    store_contacts_are_scoped_by_tenant_and_host,
    store_a_new_host_starts_in_the_store,
    store_a_concurrent_change_is_refused_not_lost,
    promote_moves_contacts_and_history_unchanged,
    promote_refuses_a_second_run,
    promote_is_all_or_nothing,
    store_timestamps_read_back_as_reported,
    store_is_shared_by_threads,
);

/// A host using `db`'s store for tenant `acme`, with an empty document.
fn store_host(db: &TestDatabase, probe: &Probe) -> Host {
    Host { config: probe.seed().with_store(db.store(TENANT)), document: Value::Null }
}

/// SR-005 for Level 1: the database itself refuses to change or delete history.
fn store_history_is_append_only_in_the_database(db: TestDatabase) {
    let probe = Probe::default();
    let mut host = store_host(&db, &probe);
    host.crm().add_contact(json!({"id": "a", "name": "Ann"})).expect("added");
    host.crm().update_contact("a", json!({"email": "ann@example.com"})).expect("updated");
    let before = db.dump();
    let mut attempts = vec![
        "UPDATE crm_contact_history SET actor_id = 'mallory'",
        "DELETE FROM crm_contact_history WHERE seq = 2",
    ];
    if db.is_postgres() {
        attempts.push("TRUNCATE crm_contact_history");
    }
    for sql in attempts {
        let refused = db.raw(sql);
        assert!(matches!(refused, Err(ref e) if e.contains("append-only")), "{sql}: {refused:?}");
    }
    assert_eq!(db.dump(), before);
    assert_eq!(host.crm().history().map(|h| h.len()).ok(), Some(2));
}

/// Contacts are keyed by tenant and host: two hosts may use the same id, neither sees or changes
/// the other's contacts, and another tenant's store does not know the host at all.
fn store_contacts_are_scoped_by_tenant_and_host(db: TestDatabase) {
    let probe = Probe::default();
    let mut ada = store_host(&db, &probe);
    let mut bob = store_host(&db, &probe);
    let ann = ada.crm().add_contact(json!({"id": "crm-7", "name": "Ann"})).expect("added");
    let only_ada = ada.crm().add_contact(json!({"id": "only-ada", "name": "Otto"})).expect("added");
    let bea = bob.crm().add_contact(json!({"id": "crm-7", "name": "Bea"})).expect("same id, other host");
    assert_eq!(ada.crm().contacts().ok(), Some(vec![ann, only_ada]));
    assert_eq!(bob.crm().contacts().ok(), Some(vec![bea]));
    assert!(matches!(bob.crm().remove_contact("only-ada"), Err(CrmError::NotFound { .. })));
    assert_eq!(bob.crm().history().map(|h| h.len()).ok(), Some(1));

    let hosts = db.rows("SELECT DISTINCT host_id FROM crm_contacts WHERE contact_id = 'crm-7'");
    assert_eq!(hosts.len(), 2, "one row per host");

    // The same host read through another tenant's store: unknown there, never empty by mistake.
    let mut elsewhere =
        Host { config: probe.seed().with_store(db.store("globex")), document: ada.document.clone() };
    assert!(matches!(elsewhere.crm().contacts(), Err(CrmError::UnknownHost { .. })));
    assert!(matches!(elsewhere.crm().add_contact(json!({"name": "X"})), Err(CrmError::UnknownHost { .. })));
}

/// With a store configured, an empty host starts there: its first change creates its CRM and
/// turns its document into a pointer; the contact is a `crm_contacts` row Level 2 can query.
fn store_a_new_host_starts_in_the_store(db: TestDatabase) {
    let probe = Probe::default();
    let mut host = store_host(&db, &probe);
    assert!(host.crm().backend().is_store());
    host.crm().add_contact(john()).expect("added");
    let host_id = host.document["store"].as_str().map(str::to_owned).expect("a pointer");
    assert_eq!(host.document, json!({"version": 1, "store": host_id}));
    assert_eq!(
        db.rows("SELECT host_id, name, email, phone, company FROM crm_contacts"),
        [[
            Some(host_id),
            Some("John Doe".into()),
            Some("john@example.com".into()),
            Some("+1-555-0100".into()),
            Some("Acme Corp".into())
        ]]
    );

    // Without the store in its configuration, the host's CRM is not silently empty.
    let mut unconfigured = Host { config: probe.seed(), document: host.document.clone() };
    assert!(matches!(unconfigured.crm().contacts(), Err(CrmError::Moved { .. })));
    assert!(matches!(unconfigured.crm().add_contact(json!({"name": "X"})), Err(CrmError::Moved { .. })));
    assert_eq!(unconfigured.document, host.document);
}

/// Two handles of one host (say, two processes): a change computed from a contact that changed
/// meanwhile is refused, and the other change is kept (no lost update).
fn store_a_concurrent_change_is_refused_not_lost(db: TestDatabase) {
    let probe = Probe::default();
    let store = db.store(TENANT);
    let mut first = Host { config: probe.seed().with_store(store.clone()), document: Value::Null };
    first.crm().add_contact(json!({"id": "a", "name": "Ann"})).expect("added");
    let pointer = first.document.clone();
    let first = Arc::new(Mutex::new(first));
    let meddler = first.clone();
    // The second handle's `before` hook runs after it read the contact and before it commits.
    let config = probe
        .config(move |e| {
            seed_fields(e).before("edit", move |_| {
                lock(&meddler)
                    .crm()
                    .update_contact("a", json!({"name": "Annie"}))
                    .map(|_| ())
                    .map_err(|e| Veto::new(e.to_string()))
            })
        })
        .with_store(store);
    let mut second = Host { config, document: pointer };
    let refused = second.crm().update_contact("a", json!({"email": "ann@example.com"}));
    assert!(matches!(refused, Err(CrmError::Conflict { ref id }) if id == "a"), "{refused:?}");
    let kept = lock(&first).crm().contact("a").ok().flatten().map(|c| c.to_json());
    assert_eq!(kept, Some(json!({"id": "a", "name": "Annie"})));
    assert_eq!(lock(&first).crm().history().map(|h| h.len()).ok(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// The migration helper

/// A host with a document-backed CRM and some history: adds, edits, a delete, actors, time.
fn document_host(probe: &Probe) -> Host {
    let mut host = Host {
        config: probe.config(|e| seed_fields(e).field("score", FieldType::Integer)),
        document: Value::Null,
    };
    let john = host.crm().add_contact(john()).expect("added");
    probe.advance(30);
    host.crm().add_contact(json!({"id": "c-2", "name": "Bea", "score": 7})).expect("added");
    host.crm().add_contact(json!({"id": "c-3", "name": "Cy"})).expect("added");
    probe.advance(30);
    host.crm()
        .with_actor(actor("alice", &[]))
        .update_contact(&john.id, json!({"company": "Globex", "phone": null}))
        .expect("updated");
    host.crm().with_actor(actor("bob", &[])).remove_contact("c-2").expect("removed");
    host.crm().add_contact(json!({"id": "c-2", "name": "Bea again"})).expect("added");
    host
}

/// The whole CRM as JSON text: contact order and field order included.
fn exported(host: &mut Host) -> String {
    let (contacts, history) = host.crm().export().expect("export");
    let contacts: Vec<Value> = contacts.iter().map(Contact::to_json).collect();
    format!("{contacts:?} {history:?}")
}

/// US-010 / BR-006: contacts and history move unchanged (ids, order, fields, sequence numbers,
/// timestamps, actors, before and after); the same code keeps working, numbering on.
fn promote_moves_contacts_and_history_unchanged(db: TestDatabase) {
    let probe = Probe::default();
    let mut host = document_host(&probe);
    let before = exported(&mut host);
    host.config = host.config.with_store(db.store(TENANT));
    assert!(!host.crm().backend().is_store(), "not promoted yet: still the document");
    assert_eq!(exported(&mut host), before);

    let promotion = nexus_crm::level1::promote(&mut host).expect("promoted");
    assert_eq!((promotion.contacts, promotion.entries), (3, 6));
    assert_eq!(host.document, json!({"version": 1, "store": promotion.host}));
    assert!(host.crm().backend().is_store());
    assert_eq!(exported(&mut host), before);

    probe.advance(60);
    let events = probe.events().len();
    let dan = host.crm().add_contact(json!({"id": "c-4", "name": "Dan"})).expect("added");
    let history = host.crm().history().expect("history");
    assert_eq!((history.len(), history[6].seq, history[6].at), (7, 7, probe.now()));
    let ids: Vec<String> =
        host.crm().contacts().expect("contacts").iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids[1..], ["c-3", "c-2", "c-4"]);
    assert_eq!(probe.events().len(), events + 1);
    assert_eq!(probe.events().last().map(|e| e.contact().clone()), Some(dan));
}

/// A second run is refused with a typed error and changes nothing; so is promoting under a host
/// id the store has, or with no store configured.
fn promote_refuses_a_second_run(db: TestDatabase) {
    let probe = Probe::default();
    let store = db.store(TENANT);
    let mut host = document_host(&probe);
    let document = host.document.clone();
    assert!(matches!(nexus_crm::level1::promote(&mut host), Err(CrmError::StoreNotConfigured)));
    assert_eq!(host.document, document);

    host.config = host.config.with_store(store.clone());
    let first = nexus_crm::level1::promote_as(&mut host, "user:42").expect("promoted");
    assert_eq!(first.host, "user:42");
    let (state, pointer) = (db.dump(), host.document.clone());
    let again = nexus_crm::level1::promote(&mut host);
    assert!(matches!(again, Err(CrmError::AlreadyPromoted { ref host }) if host == "user:42"), "{again:?}");
    assert_eq!((db.dump(), &host.document), (state.clone(), &pointer));

    // The document was lost (say, not saved after promotion): the copy is refused, not doubled.
    let mut twin = document_host(&Probe::default());
    twin.config = twin.config.with_store(store);
    let twin_document = twin.document.clone();
    let refused = nexus_crm::level1::promote_as(&mut twin, "user:42");
    assert!(matches!(refused, Err(CrmError::HostExists { ref host }) if host == "user:42"), "{refused:?}");
    assert!(matches!(nexus_crm::level1::promote_as(&mut twin, ""), Err(CrmError::InvalidHostId { .. })));
    assert_eq!((db.dump(), &twin.document), (state, &twin_document));
}

/// A failure half-way through (the database refuses the third history entry) writes nothing and
/// leaves the document as it was; so does a damaged document. Once the cause is gone it works.
fn promote_is_all_or_nothing(db: TestDatabase) {
    let probe = Probe::default();
    let mut host = document_host(&probe);
    host.config = host.config.with_store(db.store(TENANT));
    let (state, document) = (db.dump(), host.document.clone());

    let (inject, remove) = if db.is_postgres() {
        (
            "CREATE FUNCTION fail_third() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.seq = 3 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END; $$; \
             CREATE TRIGGER fail_third BEFORE INSERT ON crm_contact_history \
             FOR EACH ROW EXECUTE FUNCTION fail_third()",
            "DROP TRIGGER fail_third ON crm_contact_history",
        )
    } else {
        (
            "CREATE TRIGGER fail_third BEFORE INSERT ON crm_contact_history WHEN NEW.seq = 3 \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            "DROP TRIGGER fail_third",
        )
    };
    db.raw(inject).expect("trigger created");
    let failed = nexus_crm::level1::promote(&mut host);
    assert!(matches!(failed, Err(CrmError::Store(_))), "{failed:?}");
    assert_eq!(db.dump(), state, "a failed promotion writes nothing");
    assert_eq!(host.document, document, "a failed promotion keeps the document");
    db.raw(remove).expect("trigger dropped");

    let mut damaged = document.clone();
    damaged["history"][2]["seq"] = json!(9);
    let mut broken = Host { config: host.config.clone(), document: damaged.clone() };
    assert!(matches!(nexus_crm::level1::promote(&mut broken), Err(CrmError::CorruptDocument { .. })));
    assert_eq!((db.dump(), &broken.document), (state, &damaged));

    let promotion = nexus_crm::level1::promote(&mut host).expect("promoted once the cause is gone");
    assert_eq!(promotion.entries, 6);
}

/// The store keeps microseconds: what a change reports (entry, event) is what history reads back.
fn store_timestamps_read_back_as_reported(db: TestDatabase) {
    let events: Arc<Mutex<Vec<CrmEvent>>> = Arc::default();
    let seen = events.clone();
    let at = start() + Duration::nanoseconds(123_456_789);
    let config = CrmConfig::builder()
        .entity("contact", seed_fields)
        .subscribe(move |event| lock(&seen).push(event.clone()))
        .clock(move || at)
        .build()
        .expect("valid")
        .with_store(db.store(TENANT));
    let mut host = Host { config, document: Value::Null };
    host.crm().add_contact(john()).expect("added");
    let history = host.crm().history().expect("history");
    assert_eq!(history[0].at, start() + Duration::microseconds(123_456));
    assert_eq!(lock(&events).iter().map(|e| e.entry().clone()).collect::<Vec<_>>(), history);
}

/// One store serves hosts on several threads at once; each host's history stays its own.
fn store_is_shared_by_threads(db: TestDatabase) {
    let probe = Probe::default();
    let config = probe.seed().with_store(db.store(TENANT));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut host = Host { config, document: Value::Null };
                for i in 0..10 {
                    host.crm()
                        .add_contact(json!({"id": format!("c-{i}"), "name": format!("T{t}")}))
                        .expect("added");
                }
                host
            })
        })
        .collect();
    for thread in threads {
        let mut host = thread.join().expect("no panic");
        let history = host.crm().history().expect("history");
        assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        assert_eq!(host.crm().contacts().map(|c| c.len()).ok(), Some(10));
    }
    assert_eq!(db.rows("SELECT CAST(COUNT(*) AS TEXT) FROM crm_contacts"), [[Some("40".to_owned())]]);
}

/// The blocking bridge works from inside async code, on a current-thread runtime (where
/// `block_on` or `block_in_place` would panic) and on a multi-thread one.
#[tokio::test(flavor = "current_thread")]
async fn store_calls_work_inside_a_current_thread_runtime() {
    inside_a_runtime();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_calls_work_inside_a_multi_thread_runtime() {
    inside_a_runtime();
}

fn inside_a_runtime() {
    let probe = Probe::default();
    let store = CrmStore::in_memory(TenantId::new(TENANT)).expect("an in-memory store");
    let mut host = Host { config: probe.seed().with_store(store), document: Value::Null };
    let ann = host.crm().add_contact(json!({"name": "Ann"})).expect("added");
    assert_eq!(host.crm().contacts().ok(), Some(vec![ann]));
    assert!(host.crm().backend().is_store());
}

/// A store that cannot be opened is a typed error, not a panic.
#[test]
fn a_store_that_cannot_be_opened_is_an_error() {
    let refused = CrmStore::open("mysql://localhost/crm", TenantId::new(TENANT));
    assert!(matches!(refused, Err(CrmError::Store(_))), "{refused:?}");
}
