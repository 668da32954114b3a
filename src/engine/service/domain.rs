//! Domain entities on the engine: contacts, leads, opportunities and campaigns, and the
//! conversion of a qualified lead into an opportunity.
//!
//! A lead is a contact (`crm_contacts`, status `lead`) whose pipeline runs as an instance of the
//! definition's `lead` entity; an opportunity (`crm_opportunities`) and a campaign
//! (`crm_campaigns`) likewise run as instances of `opportunity` and `campaign`. Each method writes
//! the row, the instance and the domain event (`lead_created`, `opportunity_created`,
//! `campaign_created`, `lead_converted`) in one transaction; subscribers receive the events when
//! the outbox is delivered.
//!
//! A lead converts once: the opportunity's id is derived from the contact's, so a second
//! conversion, even a concurrent one, is refused by the database and writes nothing.

use chrono::NaiveDate;
use serde_json::{Map, Value as Json, json};

use super::{Engine, EngineError, InstanceView};
use crate::engine::eval::Actor;
use crate::store::{
    Campaign, Commit, Contact, EntityWrite, NewHistory, NewOutbox, Opportunity, Store, StoreError, Stored,
    StoredOutboxKind, TenantId, new_id,
};

/// The domain events this module emits, as delivered to subscribers.
pub mod domain_events {
    /// A lead (contact and lead instance) was created.
    pub const LEAD_CREATED: &str = "lead_created";
    /// A qualified lead became an opportunity.
    pub const LEAD_CONVERTED: &str = "lead_converted";
    /// An opportunity was created.
    pub const OPPORTUNITY_CREATED: &str = "opportunity_created";
    /// A campaign was created.
    pub const CAMPAIGN_CREATED: &str = "campaign_created";
    /// A contact without a pipeline was created.
    pub const CONTACT_CREATED: &str = "contact_created";
    /// History entry on an opportunity instance created by conversion.
    pub const CONVERTED_FROM_LEAD: &str = "converted_from_lead";
}

/// The stage a lead's instance must be in to convert.
const QUALIFIED: &str = "qualified";

/// A person to record: a contact, or a lead with [`Engine::create_lead`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewContact {
    /// Name (required).
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Status for a plain contact (default `contact`; leads are always `lead`).
    pub status: Option<String>,
    /// Lead score.
    pub score: Option<f64>,
    /// Other fields (an object, or `null`).
    pub data: Json,
}

/// A deal to open from a qualified lead with [`Engine::convert_lead`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewOpportunity {
    /// Amount, 0 or more.
    pub value: f64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Win probability, 0 to 1.
    pub probability: f64,
    /// Expected close date.
    pub close_date: Option<NaiveDate>,
    /// The opportunity instance's data, validated against the definition's `dataSchema`.
    pub data: Json,
}

/// A campaign to run with [`Engine::create_campaign`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCampaign {
    /// Name (required).
    pub name: String,
    /// Type: `email`, `event`, …
    pub kind: String,
    /// First day.
    pub start: Option<NaiveDate>,
    /// Last day.
    pub end: Option<NaiveDate>,
    /// The campaign instance's data, validated against the definition's `dataSchema`.
    pub data: Json,
}

/// A record and the instance that runs its pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Running<T> {
    /// The row written.
    pub record: T,
    /// Its instance.
    pub instance: InstanceView,
}

impl<S: Store> Engine<S> {
    /// Records a contact without a pipeline.
    pub async fn create_contact(
        &self,
        tenant: &TenantId,
        contact: NewContact,
    ) -> Result<Contact, EngineError> {
        let status = contact.status.clone().unwrap_or_else(|| "contact".to_owned());
        let row = contact_row(contact, status, None)?;
        let mut commit = Commit::new(self.now());
        commit.outbox.push(event(domain_events::CONTACT_CREATED, json!({ "contact_id": row.id })));
        commit.contacts.push(EntityWrite::Insert(row.clone()));
        self.store.commit(tenant, commit).await?;
        Ok(row)
    }

    /// Records a lead: a contact with status `lead` and an instance of `definition`'s `lead`
    /// entity (with `data`, validated), in one transaction.
    pub async fn create_lead(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        definition: &str,
        lead: NewContact,
        data: &Json,
    ) -> Result<Running<Contact>, EngineError> {
        let (mut commit, mut instance, _) = self.start(tenant, actor, definition, "lead", data).await?;
        let row = contact_row(lead, "lead".to_owned(), Some(instance.id.clone()))?;
        commit.outbox.push(event(
            domain_events::LEAD_CREATED,
            json!({ "contact_id": row.id, "instance_id": instance.id }),
        ));
        commit.contacts.push(EntityWrite::Insert(row.clone()));
        instance.number = self.store.commit_numbered(tenant, commit).await?.number;
        Ok(Running { record: row, instance })
    }

    /// Converts the qualified lead `contact_id` (its instance in stage `qualified`) into an
    /// opportunity: the opportunity row and its instance of the `opportunity` entity of the lead's
    /// definition, the contact marked `converted` and linked, and the events, in one transaction.
    /// The lead's own instance is left as it is; fire its transitions as the definition says.
    pub async fn convert_lead(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        contact_id: &str,
        opportunity: NewOpportunity,
    ) -> Result<Running<Opportunity>, EngineError> {
        check_opportunity(&opportunity)?;
        let unknown = || EngineError::UnknownRecord { kind: "contact", id: contact_id.to_owned() };
        let stored = self.store.contact(tenant, contact_id).await?.ok_or_else(unknown)?;
        let mut contact = stored.value;
        let refuse = |reason: String| EngineError::NotConvertible { id: contact_id.to_owned(), reason };
        if contact.status != "lead" {
            return Err(refuse(format!("its status is `{}`, not `lead`", contact.status)));
        }
        let lead_instance = contact.instance_id.clone().ok_or_else(|| refuse("it has no pipeline".into()))?;
        let lead = self.instance(tenant, &lead_instance).await?;
        if lead.stage != QUALIFIED {
            return Err(refuse(format!("its instance is in stage `{}`, not `{QUALIFIED}`", lead.stage)));
        }

        let (mut commit, mut instance, _) =
            self.start(tenant, actor, &lead.definition, "opportunity", &opportunity.data).await?;
        let id = format!("opp-{contact_id}");
        let link =
            json!({ "contact_id": contact_id, "lead_instance_id": lead_instance, "opportunity_id": id });
        commit.history.push(NewHistory {
            event: domain_events::CONVERTED_FROM_LEAD.to_owned(),
            actor_id: Some(actor.id.clone()),
            payload: Some(link.clone()),
            ..NewHistory::default()
        });
        let row = Opportunity {
            id: id.clone(),
            contact_id: contact_id.to_owned(),
            instance_id: Some(instance.id.clone()),
            stage: instance.stage.clone(),
            value: opportunity.value,
            currency: opportunity.currency,
            close_date: opportunity.close_date,
            probability: opportunity.probability,
            data: json!({ "lead_instance_id": lead_instance }),
        };
        contact.status = "converted".to_owned();
        if let Json::Object(map) = &mut contact.data {
            map.insert("opportunity_id".to_owned(), Json::String(id.clone()));
        } else {
            contact.data = json!({ "opportunity_id": id });
        }
        commit.outbox.push(event(domain_events::LEAD_CONVERTED, link));
        commit.outbox.push(event(
            domain_events::OPPORTUNITY_CREATED,
            json!({
                "opportunity_id": id, "contact_id": contact_id, "instance_id": instance.id,
                "value": row.value, "currency": row.currency,
            }),
        ));
        commit.opportunities.push(EntityWrite::Insert(row.clone()));
        commit.contacts.push(EntityWrite::Update(contact));
        match self.store.commit_numbered(tenant, commit).await {
            Ok(committed) => {
                instance.number = committed.number;
                Ok(Running { record: row, instance })
            }
            Err(StoreError::Duplicate { .. }) => Err(refuse("it was converted already".into())),
            Err(other) => Err(other.into()),
        }
    }

    /// Creates a campaign (status `planned`) and its instance of `definition`'s `campaign` entity.
    pub async fn create_campaign(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        definition: &str,
        campaign: NewCampaign,
    ) -> Result<Running<Campaign>, EngineError> {
        let invalid =
            |reason: &str| EngineError::InvalidRecord { kind: "campaign", reason: reason.to_owned() };
        if campaign.name.trim().is_empty() {
            return Err(invalid("a campaign needs a name"));
        }
        if let (Some(start), Some(end)) = (campaign.start, campaign.end)
            && end < start
        {
            return Err(invalid(&format!("it ends ({end}) before it starts ({start})")));
        }
        let (mut commit, mut instance, _) =
            self.start(tenant, actor, definition, "campaign", &campaign.data).await?;
        let row = Campaign {
            id: new_id(),
            instance_id: Some(instance.id.clone()),
            name: campaign.name,
            kind: campaign.kind,
            start_date: campaign.start,
            end_date: campaign.end,
            metrics: json!({}),
            status: "planned".to_owned(),
        };
        commit.outbox.push(event(
            domain_events::CAMPAIGN_CREATED,
            json!({ "campaign_id": row.id, "instance_id": instance.id, "name": row.name }),
        ));
        commit.campaigns.push(EntityWrite::Insert(row.clone()));
        instance.number = self.store.commit_numbered(tenant, commit).await?.number;
        Ok(Running { record: row, instance })
    }

    /// One contact or lead.
    pub async fn contact(&self, tenant: &TenantId, id: &str) -> Result<Stored<Contact>, EngineError> {
        let unknown = || EngineError::UnknownRecord { kind: "contact", id: id.to_owned() };
        self.store.contact(tenant, id).await?.ok_or_else(unknown)
    }

    /// One opportunity.
    pub async fn opportunity(&self, tenant: &TenantId, id: &str) -> Result<Stored<Opportunity>, EngineError> {
        let unknown = || EngineError::UnknownRecord { kind: "opportunity", id: id.to_owned() };
        self.store.opportunity(tenant, id).await?.ok_or_else(unknown)
    }

    /// One campaign.
    pub async fn campaign(&self, tenant: &TenantId, id: &str) -> Result<Stored<Campaign>, EngineError> {
        let unknown = || EngineError::UnknownRecord { kind: "campaign", id: id.to_owned() };
        self.store.campaign(tenant, id).await?.ok_or_else(unknown)
    }
}

/// A domain event for the outbox.
fn event(name: &str, payload: Json) -> NewOutbox {
    NewOutbox { id: new_id(), kind: StoredOutboxKind::Event, name: name.to_owned(), payload }
}

/// A checked contact row with a fresh id.
fn contact_row(
    contact: NewContact,
    status: String,
    instance_id: Option<String>,
) -> Result<Contact, EngineError> {
    let invalid = |reason: &str| EngineError::InvalidRecord { kind: "contact", reason: reason.to_owned() };
    if contact.name.trim().is_empty() {
        return Err(invalid("a contact needs a name"));
    }
    if contact.email.as_deref().is_some_and(|e| !plausible_email(e)) {
        return Err(invalid("the email must look like `name@domain`"));
    }
    if contact.score.is_some_and(|s| !s.is_finite()) {
        return Err(invalid("the score must be a finite number"));
    }
    let data = match contact.data {
        Json::Null => Json::Object(Map::new()),
        Json::Object(map) => Json::Object(map),
        _ => return Err(invalid("`data` must be an object")),
    };
    Ok(Contact {
        id: new_id(),
        instance_id,
        name: contact.name,
        email: contact.email,
        phone: contact.phone,
        company: contact.company,
        status,
        score: contact.score,
        data,
    })
}

fn plausible_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !email.chars().any(char::is_whitespace)
    })
}

fn check_opportunity(o: &NewOpportunity) -> Result<(), EngineError> {
    let invalid =
        |reason: &str| EngineError::InvalidRecord { kind: "opportunity", reason: reason.to_owned() };
    if !(o.value.is_finite() && o.value >= 0.0) {
        return Err(invalid("the value must be a number of 0 or more"));
    }
    if !(o.probability.is_finite() && (0.0..=1.0).contains(&o.probability)) {
        return Err(invalid("the probability must be between 0 and 1"));
    }
    if !(o.currency.len() == 3 && o.currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(invalid("the currency must be an ISO 4217 code such as `EUR`"));
    }
    Ok(())
}
