//! Domain entities (`crm_contacts`, `crm_opportunities`, `crm_campaigns`): reads and listings,
//! and the writes a commit carries.

use chrono::{DateTime, Utc};

use super::columns::{
    CAMPAIGN_COLS, CONTACT_COLS, OPPORTUNITY_COLS, campaign_row, contact_row, opportunity_row,
};
use super::{Conn, SqlStore, exactly_one, page_size};
use crate::store::backend::{Backend, Stmt};
use crate::store::{Campaign, Contact, EntityQuery, EntityWrite, Opportunity, StoreResult, Stored, TenantId};

pub(super) async fn contact<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<Stored<Contact>>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        CONTACT_COLS,
        " FROM crm_contacts WHERE tenant_id = $1 AND id = $2"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_one(stmt, contact_row).await
}

pub(super) async fn contacts<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    query: &EntityQuery,
) -> StoreResult<Vec<Stored<Contact>>> {
    let stmt =
        entity_list(concat_sql!("SELECT ", CONTACT_COLS, " FROM crm_contacts"), "status", tenant, query);
    store.read_all(stmt, contact_row).await
}

pub(super) async fn opportunity<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<Stored<Opportunity>>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        OPPORTUNITY_COLS,
        " FROM crm_opportunities WHERE tenant_id = $1 AND id = $2"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_one(stmt, opportunity_row).await
}

pub(super) async fn opportunities<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    query: &EntityQuery,
) -> StoreResult<Vec<Stored<Opportunity>>> {
    let stmt = entity_list(
        concat_sql!("SELECT ", OPPORTUNITY_COLS, " FROM crm_opportunities"),
        "stage",
        tenant,
        query,
    );
    store.read_all(stmt, opportunity_row).await
}

pub(super) async fn campaign<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<Stored<Campaign>>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        CAMPAIGN_COLS,
        " FROM crm_campaigns WHERE tenant_id = $1 AND id = $2"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_one(stmt, campaign_row).await
}

pub(super) async fn campaigns<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    query: &EntityQuery,
) -> StoreResult<Vec<Stored<Campaign>>> {
    let stmt =
        entity_list(concat_sql!("SELECT ", CAMPAIGN_COLS, " FROM crm_campaigns"), "status", tenant, query);
    store.read_all(stmt, campaign_row).await
}

pub(super) async fn write_contact<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    write: &EntityWrite<Contact>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (sql, c, insert) = match write {
        EntityWrite::Insert(c) => (
            "INSERT INTO crm_contacts (tenant_id, id, updated_at, instance_id, name, email, phone, company, status, \
             score, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $3)",
            c,
            true,
        ),
        EntityWrite::Update(c) => (
            "UPDATE crm_contacts SET updated_at = $3, instance_id = $4, name = $5, email = $6, phone = $7, \
             company = $8, status = $9, score = $10, data = $11 WHERE tenant_id = $1 AND id = $2",
            c,
            false,
        ),
    };
    let stmt = Stmt::new(sql)
        .arg(tenant)
        .arg(&c.id)
        .arg(at)
        .arg(c.instance_id.as_ref())
        .arg(&c.name)
        .arg(c.email.as_ref())
        .arg(c.phone.as_ref())
        .arg(c.company.as_ref())
        .arg(&c.status)
        .arg(c.score)
        .arg(&c.data);
    entity_written::<DB>(conn, stmt, insert, "contact", &c.id).await
}

pub(super) async fn write_opportunity<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    write: &EntityWrite<Opportunity>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (sql, o, insert) = match write {
        EntityWrite::Insert(o) => (
            "INSERT INTO crm_opportunities (tenant_id, id, updated_at, contact_id, instance_id, stage, value, \
             currency, close_date, probability, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $3)",
            o,
            true,
        ),
        EntityWrite::Update(o) => (
            "UPDATE crm_opportunities SET updated_at = $3, contact_id = $4, instance_id = $5, stage = $6, \
             value = $7, currency = $8, close_date = $9, probability = $10, data = $11 \
             WHERE tenant_id = $1 AND id = $2",
            o,
            false,
        ),
    };
    let stmt = Stmt::new(sql)
        .arg(tenant)
        .arg(&o.id)
        .arg(at)
        .arg(&o.contact_id)
        .arg(o.instance_id.as_ref())
        .arg(&o.stage)
        .arg(o.value)
        .arg(&o.currency)
        .arg(o.close_date)
        .arg(o.probability)
        .arg(&o.data);
    entity_written::<DB>(conn, stmt, insert, "opportunity", &o.id).await
}

pub(super) async fn write_campaign<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    write: &EntityWrite<Campaign>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (sql, c, insert) = match write {
        EntityWrite::Insert(c) => (
            "INSERT INTO crm_campaigns (tenant_id, id, updated_at, instance_id, name, type, start_date, end_date, \
             metrics, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $3)",
            c,
            true,
        ),
        EntityWrite::Update(c) => (
            "UPDATE crm_campaigns SET updated_at = $3, instance_id = $4, name = $5, type = $6, start_date = $7, \
             end_date = $8, metrics = $9, status = $10 WHERE tenant_id = $1 AND id = $2",
            c,
            false,
        ),
    };
    let stmt = Stmt::new(sql)
        .arg(tenant)
        .arg(&c.id)
        .arg(at)
        .arg(c.instance_id.as_ref())
        .arg(&c.name)
        .arg(&c.kind)
        .arg(c.start_date)
        .arg(c.end_date)
        .arg(&c.metrics)
        .arg(&c.status);
    entity_written::<DB>(conn, stmt, insert, "campaign", &c.id).await
}

/// An insert either works or raises; an update must find its row.
async fn entity_written<DB: Backend>(
    conn: &mut Conn<DB>,
    stmt: Stmt,
    insert: bool,
    what: &'static str,
    id: &str,
) -> StoreResult<()> {
    if insert {
        DB::execute(conn, stmt).await?;
        Ok(())
    } else {
        exactly_one::<DB>(conn, stmt, what, id).await
    }
}

fn entity_list(
    select: &'static str,
    status_column: &'static str,
    tenant: &TenantId,
    query: &EntityQuery,
) -> Stmt {
    let mut stmt = Stmt::new(select);
    stmt.push(" WHERE tenant_id = ").bind(tenant.as_str());
    if let Some(status) = &query.status {
        stmt.push(" AND ").push(status_column).push(" = ").bind(status);
    }
    if let Some(after) = &query.after {
        stmt.push(" AND id > ").bind(after);
    }
    stmt.push(" ORDER BY id LIMIT ").bind(page_size(query.limit));
    stmt
}
