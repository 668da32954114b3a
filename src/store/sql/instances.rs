//! The instance listing ([`Store::instances`](crate::store::Store::instances)): filters and keyset
//! pages over `(updated_at, id)`, oldest change first, so a client can follow changes by
//! asking again from its last cursor.

use chrono::DateTime;

use super::columns::{INSTANCE_COLS, instance_row};
use super::{SqlStore, page_size};
use crate::store::backend::{Backend, Stmt};
use crate::store::{Cursor, InstanceQuery, InstanceRow, Page, StoreError, StoreResult, TenantId};

pub(super) async fn instances<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    query: &InstanceQuery,
) -> StoreResult<Page<InstanceRow>> {
    let limit = page_size(query.limit);
    let mut stmt =
        Stmt::new(concat_sql!("SELECT ", INSTANCE_COLS, " FROM crm_instances i WHERE i.tenant_id = $1"))
            .arg(tenant.as_str());
    if let Some(definition) = &query.definition {
        stmt.push(" AND i.definition_id = ").bind(definition);
    }
    if let Some(entity) = &query.entity {
        stmt.push(" AND i.entity = ").bind(entity);
    }
    if let Some(stage) = &query.stage {
        stmt.push(" AND i.state = ").bind(stage);
    }
    if let Some(status) = query.status {
        stmt.push(" AND i.status = ").bind(status.as_str());
    }
    if let Some(assignee) = &query.assignee {
        stmt.push(" AND i.assignee = ").bind(assignee);
    }
    if let Some(since) = query.updated_since {
        stmt.push(" AND i.updated_at >= ").bind(since);
    }
    if let Some(after) = &query.after {
        let (at, id) = parse_cursor(after)?;
        stmt.push(" AND (i.updated_at, i.id) > (").bind(at).push(", ").bind(id).push(")");
    }
    stmt.push(" ORDER BY i.updated_at, i.id LIMIT ").bind(limit + 1);
    let mut items = store.read_all(stmt, instance_row).await?;
    let limit = limit as usize;
    let next = (items.len() > limit).then(|| {
        let last = &items[limit - 1];
        Cursor(format!("i.{}.{}", last.updated_at.timestamp_micros(), last.id))
    });
    items.truncate(limit);
    Ok(Page { items, next })
}

/// `i.<microseconds>.<id>`, as [`instances`] hands it out.
fn parse_cursor(cursor: &Cursor) -> StoreResult<(chrono::DateTime<chrono::Utc>, String)> {
    let mut parts = cursor.as_str().splitn(3, '.');
    let (Some("i"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    match micros.parse().ok().and_then(DateTime::from_timestamp_micros) {
        Some(at) if !id.is_empty() => Ok((at, id.to_owned())),
        _ => Err(StoreError::InvalidCursor),
    }
}
