//! Custom integrations through the public `Integration` trait, registered by name (FR-EXT-001),
//! and compensation of a failed group in reverse order (BR-004).

mod support;

use std::sync::{Arc, Mutex};

use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{ActionFailure, ActionSuccess, Delivered, Engine};
use nexus_crm::engine::worker::{Worker, WorkerConfig};
use nexus_crm::integrations::{ActionFuture, Integration, Registry};
use nexus_crm::store::{StoredOutboxKind, TenantId};
use serde_json::json;
use support::db::each_backend;

/// Records what it was asked to do; fails `execute` for good when `fails`.
struct Recording {
    calls: Arc<Mutex<Vec<String>>>,
    fails: bool,
}

impl Integration for Recording {
    fn execute<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(async move {
            self.calls.lock().expect("calls").push(format!("execute {}", item.name));
            if self.fails {
                Err(ActionFailure::permanent("the carrier refused the parcel"))
            } else {
                Ok(ActionSuccess::default())
            }
        })
    }

    fn compensate<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(async move {
            assert_eq!(item.kind, StoredOutboxKind::Compensation);
            let of = item.payload["compensates"].as_str().unwrap_or("?").to_owned();
            self.calls.lock().expect("calls").push(format!("compensate {} (undoes {of})", item.name));
            Ok(ActionSuccess::default())
        })
    }
}

const SAGA: &str = r#"{"id": "saga",
  "entities": {"order": {"stages": ["new", "placed"], "terminal": ["placed"]}},
  "actions": {
    "reserve": {"type": "custom", "plugin": "inventory", "compensation": "release"},
    "charge": {"type": "custom", "plugin": "payments", "compensation": "refund"},
    "ship": {"type": "custom", "plugin": "shipping", "max_retries": 0},
    "release": {"type": "custom", "plugin": "inventory"},
    "refund": {"type": "custom", "plugin": "payments"}
  },
  "transitions": {"place": {"from": "new", "to": "placed", "actions": ["reserve", "charge", "ship"]}}}"#;

#[tokio::test]
async fn a_failed_group_is_compensated_in_reverse_order_by_its_integrations() {
    each_backend(|db| async move {
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let recording = |fails| Recording { calls: calls.clone(), fails };
        let registry = Registry::new()
            .register("inventory", recording(false))
            .register("payments", recording(false))
            .register("shipping", recording(true));
        let engine = Engine::new(db.store.clone()).with_action_handler(registry);
        let tenant = TenantId::new("acme");
        let ana = Actor { id: "ana".into(), ..Actor::default() };
        engine.deploy(&tenant, SAGA).await.expect("deploy");
        let order = engine.create_instance(&tenant, &ana, "saga", "order", &json!({})).await.expect("create");
        let placed = engine.fire(&tenant, &ana, &order.id, "place", None).await.expect("place");
        // A failed integration never blocks a transition: the order is placed already.
        assert_eq!(placed.stage, "placed");

        let worker = Worker::new(WorkerConfig { id: "w".into(), ..WorkerConfig::default() });
        let pass = worker.run_once(&engine).await.expect("passes");
        assert_eq!(pass.outbox.dead.len(), 1, "{pass:?}");
        assert!(pass.outbox.dead[0].contains("the carrier refused the parcel"), "{pass:?}");
        let calls = calls.lock().expect("calls").clone();
        assert_eq!(
            calls,
            [
                "execute reserve",
                "execute charge",
                "execute ship",
                "compensate refund (undoes charge)",
                "compensate release (undoes reserve)",
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn an_action_without_an_integration_is_dead_lettered_at_once() {
    each_backend(|db| async move {
        let engine = Engine::new(db.store.clone()).with_action_handler(Registry::new());
        let tenant = TenantId::new("acme");
        let ana = Actor { id: "ana".into(), ..Actor::default() };
        engine.deploy(&tenant, SAGA).await.expect("deploy");
        let order = engine.create_instance(&tenant, &ana, "saga", "order", &json!({})).await.expect("create");
        engine.fire(&tenant, &ana, &order.id, "place", None).await.expect("place");
        let worker = Worker::new(WorkerConfig { id: "w".into(), ..WorkerConfig::default() });
        let pass = worker.run_once(&engine).await.expect("passes");
        assert!(
            pass.outbox.dead.iter().any(|d| d.contains("no integration is registered for `inventory`")),
            "{pass:?}"
        );
    })
    .await;
}
