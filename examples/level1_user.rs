//! Level 1 in five minutes: the seed's `User` model with a CRM inside it.
//!
//! Run with `cargo run --example level1_user`.

use std::sync::LazyLock;

use nexus_crm::level1::{Actor, CrmConfig, CrmError, HasCrm};
use serde_json::{Value, json};

/// The host: any type of yours. Its `crm` document is what you persist with it (a JSON column).
struct User {
    name: String,
    crm: Value,
}

static CRM: LazyLock<CrmConfig> = LazyLock::new(|| {
    CrmConfig::builder()
        .entity("contact", |contact| {
            contact
                .fields(["name", "email", "phone", "company", "status"])
                .required(["name"])
                // The seed's guard `fn($contact) => $contact->status == 'active'`, as a closure…
                .guard_fn("edit", |contact| contact.get_str("status").is_none_or(|s| s == "active"))
                // …and as an expression of the condition language, checked when this is built.
                .guard("delete", "has_role('manager')")
                .before("add", |ctx| match ctx.after.and_then(|c| c.get_str("email")) {
                    Some(email) if email.ends_with("@mailinator.com") => Err("no throwaway addresses".into()),
                    _ => Ok(()),
                })
                .after("add", |ctx| {
                    if let Some(contact) = ctx.after {
                        println!(
                            "  [hook] notify sales: new contact {}",
                            contact.get_str("name").unwrap_or("?")
                        );
                    }
                })
        })
        .subscribe(|event| println!("  [event] {} #{}", event.name(), event.entry().seq))
        .build()
        .expect("the CRM configuration is valid")
});

impl HasCrm for User {
    fn crm_config(&self) -> &CrmConfig {
        &CRM
    }
    fn crm_document(&self) -> &Value {
        &self.crm
    }
    fn crm_document_mut(&mut self) -> &mut Value {
        &mut self.crm
    }
}

fn main() -> Result<(), CrmError> {
    let mut user = User { name: "Ada".into(), crm: Value::Null };
    println!("{}'s CRM", user.name);

    println!("add John:");
    let john = user.crm().add_contact(json!({
        "name": "John Doe",
        "email": "john@example.com",
        "phone": "+1-555-0100",
        "company": "Acme Corp",
        "status": "active",
    }))?;

    println!("add a throwaway address:");
    match user.crm().add_contact(json!({"name": "Spam", "email": "x@mailinator.com"})) {
        Err(error) => println!("  refused: {error}"),
        Ok(contact) => println!("  unexpectedly added {}", contact.id),
    }
    println!("add with a typo:");
    if let Err(error) = user.crm().add_contact(json!({"name": "Jane", "emial": "jane@example.com"})) {
        println!("  refused: {error}");
    }

    println!("John moves to Globex:");
    user.crm().update_contact(&john.id, json!({"company": "Globex"}))?;

    println!("contacts:");
    for contact in user.crm().contacts()? {
        println!("  {}", contact.to_json());
    }

    let manager = Actor { id: "maria".into(), roles: vec!["manager".into()], ..Actor::default() };
    println!("can edit: {}", user.crm().can("edit"));
    println!("can delete as system: {}", user.crm().can("delete"));
    println!("can delete as maria (manager): {}", user.crm().with_actor(manager).can("delete"));

    println!("history:");
    for entry in user.crm().history()? {
        let fields = |f: &Option<_>| f.clone().map_or(Value::Null, Value::Object);
        println!(
            "  #{} {} {} {} {}: {} -> {}",
            entry.seq,
            entry.at.format("%Y-%m-%d %H:%M:%S"),
            entry.actor,
            entry.action,
            entry.contact,
            fields(&entry.before),
            fields(&entry.after)
        );
    }
    println!("the document ({} bytes) is all there is: no tables, no migrations", user.crm.to_string().len());
    Ok(())
}
