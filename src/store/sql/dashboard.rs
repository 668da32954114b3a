//! Delegations and the dashboard ([`Store::pending_for_user`](crate::store::Store::pending_for_user)):
//! who the user stands in for, then one index range scan per person and one for approvals,
//! merged into a keyset-paginated page.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::columns::{DELEGATION_COLS, INSTANCE_COLS, delegation_row, instance_row};
use super::{SqlStore, fetch, page_size};
use crate::store::backend::{Backend, Stmt};
use crate::store::{
    Cursor, DELEGATION_DEPTH_BOUND, DelegationRow, Direction, InstanceRow, Page, PendingItem, PendingQuery,
    PendingReason, SortKey, StoreError, StoreResult, TenantId,
};

pub(super) async fn pending_for_user<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    user: &str,
    query: &PendingQuery,
) -> StoreResult<Page<PendingItem>> {
    let limit = page_size(query.limit);
    let after = query.after.as_ref().map(|c| parse_cursor(c, query)).transpose()?;
    let today = query.today.unwrap_or_else(|| Utc::now().date_naive());
    // With one definition asked for, chains longer than it allows need not be followed at all.
    let max_hops = query.definition.as_ref().map_or(DELEGATION_DEPTH_BOUND, |d| depth_of(query, d));
    let mut conn = store.read.acquire().await?;

    // Who `user` stands in for today, and how many hops away; each arm below is one index range scan.
    let principals =
        fetch::<DB, _>(&mut *conn, principals_stmt(tenant.as_str(), user, today, max_hops), |r| {
            Ok((r.text()?, r.opt_text()?, r.count::<u32>()?))
        })
        .await?;
    let mut arms = vec![(user.to_owned(), None, 0, PendingReason::Assigned)];
    arms.extend(principals.into_iter().filter(|(who, _, _)| who != user).map(|(who, scope, hops)| {
        let reason = PendingReason::Delegated { from: who.clone() };
        (who, scope, hops, reason)
    }));

    let mut found: Vec<PendingItem> = Vec::new();
    for (assignee, scope, hops, reason) in arms {
        let entity = match (&scope, &query.entity) {
            (Some(scope), Some(wanted)) if scope != wanted => continue,
            (Some(scope), _) => Some(scope),
            (None, wanted) => wanted.as_ref(),
        };
        // Definitions that do not follow chains this long (BR-005); none when one is asked for,
        // as `max_hops` already stopped the chains there.
        let too_deep: Vec<&String> = match &query.definition {
            Some(_) => Vec::new(),
            None => {
                query.delegation_depth.iter().filter(|&(_, &depth)| depth < hops).map(|(id, _)| id).collect()
            }
        };
        let stmt = assigned_stmt(tenant.as_str(), &assignee, entity, &too_deep, query, after.as_ref(), limit);
        let rows = fetch::<DB, _>(&mut *conn, stmt, instance_row).await?;
        found.extend(rows.into_iter().map(|instance| PendingItem { instance, reason: reason.clone() }));
    }
    let stmt = approvals_stmt::<DB>(tenant.as_str(), user, query, after.as_ref(), limit);
    let rows = fetch::<DB, _>(&mut *conn, stmt, |r| {
        let instance = instance_row(r)?;
        Ok(PendingItem { instance, reason: PendingReason::Approval { transition: r.text()? } })
    })
    .await?;
    found.extend(rows);
    Ok(page(found, query, limit))
}

pub(super) async fn add_delegation<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    d: &DelegationRow,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_delegations (tenant_id, id, delegator, delegatee, start_date, end_date, entity, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .arg(tenant.as_str())
    .arg(&d.id)
    .arg(&d.delegator)
    .arg(&d.delegatee)
    .arg(d.start_date)
    .arg(d.end_date)
    .arg(d.entity.as_ref())
    .arg(d.created_at);
    store.write_one(stmt).await.map(drop)
}

pub(super) async fn remove_delegation<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<()> {
    let stmt = Stmt::new("DELETE FROM crm_delegations WHERE tenant_id = $1 AND id = $2")
        .arg(tenant.as_str())
        .arg(id);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "delegation", id: id.to_owned() }),
        _ => Ok(()),
    }
}

pub(super) async fn delegations<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
) -> StoreResult<Vec<DelegationRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        DELEGATION_COLS,
        " FROM crm_delegations WHERE tenant_id = $1 ORDER BY created_at, id"
    ))
    .arg(tenant.as_str());
    store.read_all(stmt, delegation_row).await
}

/// How many delegation hops away the instances of `definition` may be (BR-005).
fn depth_of(query: &PendingQuery, definition: &str) -> u32 {
    query
        .delegation_depth
        .get(definition)
        .map_or(DELEGATION_DEPTH_BOUND, |&depth| depth.min(DELEGATION_DEPTH_BOUND))
}

/// The users `user` stands in for today through delegations, with the entity each chain is
/// limited to (`NULL`: all) and the fewest hops that lead there, following chains at most
/// `max_hops` deep.
fn principals_stmt(tenant: &str, user: &str, today: NaiveDate, max_hops: u32) -> Stmt {
    Stmt::new(
        "WITH RECURSIVE chain (user_id, scope, depth) AS (\
            SELECT CAST($2 AS TEXT), CAST(NULL AS TEXT), 0 \
            UNION ALL \
            SELECT d.delegator, COALESCE(c.scope, d.entity), c.depth + 1 \
            FROM chain c JOIN crm_delegations d ON d.tenant_id = $1 AND d.delegatee = c.user_id \
            WHERE c.depth < $4 \
              AND (d.start_date IS NULL OR d.start_date <= $3) AND (d.end_date IS NULL OR d.end_date >= $3) \
              AND (c.scope IS NULL OR d.entity IS NULL OR d.entity = c.scope)\
         ) \
         SELECT user_id, scope, CAST(MIN(depth) AS BIGINT) FROM chain WHERE depth > 0 \
         GROUP BY user_id, scope ORDER BY user_id, scope",
    )
    .arg(tenant)
    .arg(user)
    .arg(today)
    .arg(max_hops)
}

fn sort_column(sort: SortKey) -> &'static str {
    match sort {
        SortKey::UpdatedAt => "i.updated_at",
        SortKey::StartedAt => "i.started_at",
    }
}

/// The filters, keyset condition, order and limit shared by both arms of the dashboard.
fn finish_pending(
    stmt: &mut Stmt,
    entity: Option<&String>,
    query: &PendingQuery,
    after: Option<&Position>,
    limit: u32,
) {
    if let Some(entity) = entity {
        stmt.push(" AND i.entity = ").bind(entity);
    }
    if let Some(stage) = &query.stage {
        stmt.push(" AND i.state = ").bind(stage);
    }
    if let Some(definition) = &query.definition {
        stmt.push(" AND i.definition_id = ").bind(definition);
    }
    let column = sort_column(query.sort);
    let (compare, order) = match query.direction {
        Direction::Asc => (") > (", " ASC"),
        Direction::Desc => (") < (", " DESC"),
    };
    if let Some(after) = after {
        // A row-value comparison: one index range, where an OR of two conditions would not be.
        stmt.push(" AND (")
            .push(column)
            .push(", i.id")
            .push(compare)
            .bind(after.key)
            .push(", ")
            .bind(&after.id);
        stmt.push(")");
    }
    stmt.push(" ORDER BY ").push(column).push(order).push(", i.id").push(order);
    stmt.push(" LIMIT ").bind(limit + 1);
}

fn assigned_stmt(
    tenant: &str,
    assignee: &str,
    entity: Option<&String>,
    too_deep: &[&String],
    query: &PendingQuery,
    after: Option<&Position>,
    limit: u32,
) -> Stmt {
    let mut stmt = Stmt::new(concat_sql!(
        "SELECT ",
        INSTANCE_COLS,
        " FROM crm_instances i WHERE i.tenant_id = $1 AND i.assignee = $2 AND i.status = 'active'"
    ))
    .arg(tenant)
    .arg(assignee);
    if let Some((first, rest)) = too_deep.split_first() {
        stmt.push(" AND i.definition_id NOT IN (").bind(*first);
        for definition in rest {
            stmt.push(", ").bind(*definition);
        }
        stmt.push(")");
    }
    finish_pending(&mut stmt, entity, query, after, limit);
    stmt
}

fn approvals_stmt<DB: Backend>(
    tenant: &str,
    user: &str,
    query: &PendingQuery,
    after: Option<&Position>,
    limit: u32,
) -> Stmt {
    let mut stmt = Stmt::new(concat_sql!(
        "SELECT ",
        INSTANCE_COLS,
        ", r.transition FROM crm_approval_requests r \
         JOIN crm_instances i ON i.tenant_id = r.tenant_id AND i.id = r.instance_id \
         WHERE r.tenant_id = $1 AND r.status = 'pending' AND i.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM crm_approvals a WHERE a.tenant_id = r.tenant_id \
         AND a.instance_id = r.instance_id AND a.transition = r.transition AND a.round = r.round \
         AND a.approver = $2) AND "
    ))
    .arg(tenant)
    .arg(user);
    stmt.push(DB::IS_ASSIGNEE);
    finish_pending(&mut stmt, query.entity.as_ref(), query, after, limit);
    stmt
}

/// A decoded cursor: the sort key and id of the last item of the previous page.
struct Position {
    key: DateTime<Utc>,
    id: String,
}

fn cursor_tag(query: &PendingQuery) -> &'static str {
    match (query.sort, query.direction) {
        (SortKey::UpdatedAt, Direction::Asc) => "ua",
        (SortKey::UpdatedAt, Direction::Desc) => "ud",
        (SortKey::StartedAt, Direction::Asc) => "sa",
        (SortKey::StartedAt, Direction::Desc) => "sd",
    }
}

fn sort_key(instance: &InstanceRow, sort: SortKey) -> DateTime<Utc> {
    match sort {
        SortKey::UpdatedAt => instance.updated_at,
        SortKey::StartedAt => instance.started_at,
    }
}

/// `<tag>.<microseconds since the epoch>.<id>`: short, and tied to one sort order.
fn make_cursor(instance: &InstanceRow, query: &PendingQuery) -> Cursor {
    let micros = sort_key(instance, query.sort).timestamp_micros();
    Cursor(format!("{}.{micros}.{}", cursor_tag(query), instance.id))
}

fn parse_cursor(cursor: &Cursor, query: &PendingQuery) -> StoreResult<Position> {
    let mut parts = cursor.as_str().splitn(3, '.');
    let (Some(tag), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    let key = micros.parse().ok().and_then(DateTime::from_timestamp_micros);
    match key {
        Some(key) if tag == cursor_tag(query) && !id.is_empty() => Ok(Position { key, id: id.to_owned() }),
        _ => Err(StoreError::InvalidCursor),
    }
}

/// Merges the arms (each sorted, each at most `limit + 1` long) into one page.
fn page(mut found: Vec<PendingItem>, query: &PendingQuery, limit: u32) -> Page<PendingItem> {
    let sort = query.sort;
    // Stable: for an instance found by several arms, the first arm's reason wins.
    found.sort_by(|a, b| {
        let order =
            (sort_key(&a.instance, sort), &a.instance.id).cmp(&(sort_key(&b.instance, sort), &b.instance.id));
        match query.direction {
            Direction::Asc => order,
            Direction::Desc => order.reverse(),
        }
    });
    let mut seen = HashSet::new();
    found.retain(|item| seen.insert(item.instance.id.clone()));
    let limit = limit as usize;
    let next = (found.len() > limit).then(|| make_cursor(&found[limit - 1].instance, query));
    found.truncate(limit);
    Page { items: found, next }
}
