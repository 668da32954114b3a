//! Domain entities (contacts, opportunities, campaigns): as written, as stored, and listed.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;

/// A contact or lead (`crm_contacts`), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Contact id.
    pub id: String,
    /// The instance that runs its lead pipeline.
    pub instance_id: Option<String>,
    /// Name.
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Status (`lead`, `qualified`, `customer`, …).
    pub status: String,
    /// Lead score.
    pub score: Option<f64>,
    /// Other fields.
    pub data: Json,
}

/// A sales deal (`crm_opportunities`), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Opportunity {
    /// Opportunity id.
    pub id: String,
    /// The contact it is with (same tenant).
    pub contact_id: String,
    /// The instance that runs its pipeline.
    pub instance_id: Option<String>,
    /// Pipeline stage.
    pub stage: String,
    /// Amount.
    pub value: f64,
    /// ISO currency code.
    pub currency: String,
    /// Expected close date.
    pub close_date: Option<NaiveDate>,
    /// Win probability.
    pub probability: f64,
    /// Other fields.
    pub data: Json,
}

/// A marketing campaign (`crm_campaigns`), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Campaign id.
    pub id: String,
    /// The instance that runs it.
    pub instance_id: Option<String>,
    /// Name.
    pub name: String,
    /// Type (`email`, `event`, …); `type` in the table.
    pub kind: String,
    /// First day.
    pub start_date: Option<NaiveDate>,
    /// Last day.
    pub end_date: Option<NaiveDate>,
    /// Metrics document.
    pub metrics: Json,
    /// Status (`draft`, `running`, …).
    pub status: String,
}

/// A domain entity as stored, with the times the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The entity.
    pub value: T,
    /// When it was inserted.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// How a commit writes a domain entity; times come from [`Commit::at`](crate::store::Commit::at).
#[derive(Debug, Clone, PartialEq)]
pub enum EntityWrite<T> {
    /// Insert; an existing id is a [`Duplicate`](crate::store::StoreError::Duplicate).
    Insert(T),
    /// Replace every field of an existing row; a missing row is
    /// [`NotFound`](crate::store::StoreError::NotFound).
    Update(T),
}

/// A listing of domain entities in id order (ids are UUIDv7, so roughly creation order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityQuery {
    /// Only this status (contacts, campaigns) or stage (opportunities).
    pub status: Option<String>,
    /// At most this many (0 means the default of 50).
    pub limit: u32,
    /// Continue after this id (the last one of the previous page).
    pub after: Option<String>,
}
