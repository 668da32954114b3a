//! Promotion (seed US-010): the `User` of `level1_user` outgrows its document and moves its CRM
//! into the database store. The code that uses the CRM does not change.
//!
//! Run with `cargo run --example level1_promotion` (an in-memory SQLite database), or with
//! `CRM_DATABASE_URL=sqlite:crm.db` or `CRM_DATABASE_URL=postgres://…` to keep it.

use nexus_crm::level1::{CrmConfig, CrmError, CrmStore, HasCrm, TenantId, promote};
use serde_json::{Value, json};

struct User {
    name: String,
    crm: Value,
    config: CrmConfig,
}

impl HasCrm for User {
    fn crm_config(&self) -> &CrmConfig {
        &self.config
    }
    fn crm_document(&self) -> &Value {
        &self.crm
    }
    fn crm_document_mut(&mut self) -> &mut Value {
        &mut self.crm
    }
}

/// The application's code: written against Level 1, unchanged by promotion.
fn work(user: &mut User) -> Result<(), CrmError> {
    let added = user.crm().add_contact(json!({"name": "Grace Hopper", "company": "Navy"}))?;
    user.crm().update_contact(&added.id, json!({"company": "Remington Rand"}))?;
    if let Err(error) = user.crm().add_contact(json!({"name": "Eve", "fax": "555"})) {
        println!("  refused as before: {error}");
    }
    println!("  {} contacts, {} history entries", user.crm().contacts()?.len(), user.crm().history()?.len());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = CrmConfig::builder()
        .entity("contact", |e| e.fields(["name", "email", "phone", "company"]).required(["name"]))
        .subscribe(|event| println!("  [event] {} #{}", event.name(), event.entry().seq))
        .build()?;
    let mut user = User { name: "Ada".into(), crm: Value::Null, config: config.clone() };

    println!("{}'s CRM in her document:", user.name);
    user.crm().add_contact(json!({"name": "John Doe", "email": "john@example.com"}))?;
    work(&mut user)?;

    // One configuration line chooses the store; `promote` moves what the document holds.
    let tenant = TenantId::new("acme");
    let store = match std::env::var("CRM_DATABASE_URL") {
        Ok(url) => CrmStore::open(&url, tenant)?,
        Err(_) => CrmStore::in_memory(tenant)?,
    };
    user.config = config.with_store(store);
    let promotion = promote(&mut user)?;
    println!(
        "promoted into the {} store as host {}: {} contacts, {} history entries",
        user.config.store().map_or("?", CrmStore::backend),
        promotion.host,
        promotion.contacts,
        promotion.entries
    );
    println!("the document is now a pointer: {}", user.crm);

    println!("{}'s CRM in the store, same code:", user.name);
    work(&mut user)?;
    for entry in user.crm().history()? {
        println!("  #{} {} {} {}", entry.seq, entry.at.format("%H:%M:%S"), entry.action, entry.contact);
    }
    Ok(())
}
