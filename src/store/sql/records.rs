//! Interactions, attachments, the timeline and the reports ([`RecordStore`](crate::store::RecordStore)).
//!
//! Listings are keyset pages, newest first. The timeline merges two keyset streams (history by
//! `(created_at, seq)`, interactions by `(occurred_at, id)`) in one total order: time, then
//! interactions before history at the same instant, then key; each stream is read from the
//! cursor with `LIMIT n + 1` and the merge cut at `n`. Reports read `crm_stage_visits`, which
//! triggers on `crm_history` keep (migration 0008), and `crm_sla`.

use chrono::{DateTime, Utc};

use super::columns::{HISTORY_COLS, history_row};
use super::{Decoded, SqlStore, page_size};
use crate::store::backend::{Backend, Reader, Stmt};
use crate::store::{
    AttachmentRow, AttachmentStorage, Cursor, FunnelRow, InteractionKind, InteractionQuery, InteractionRow,
    Page, PeriodCounts, ReportFilter, SlaReportRow, StageTimeRow, StoreError, StoreResult, Subject, TenantId,
    TimelineItem, TimelineQuery, UserRow,
};

const INTERACTION_COLS: &str = "id, instance_id, contact_id, kind, author, occurred_at, body, duration_seconds, \
     outcome, created_at";

fn interaction_row<DB: Backend>(r: &mut Reader<DB>) -> Decoded<InteractionRow> {
    let id = r.text()?;
    let subject = match (r.opt_text()?, r.opt_text()?) {
        (Some(instance), _) => Subject::Instance(instance),
        (None, Some(contact)) => Subject::Contact(contact),
        (None, None) => return Err(sqlx::Error::Decode("an interaction without a subject".into())),
    };
    Ok(InteractionRow {
        id,
        subject,
        kind: r.parsed(InteractionKind::parse)?,
        author: r.text()?,
        occurred_at: r.time()?,
        body: r.text()?,
        duration_seconds: r.opt_int()?.and_then(|s| u64::try_from(s).ok()),
        outcome: r.opt_text()?,
        created_at: r.time()?,
    })
}

const ATTACHMENT_COLS: &str =
    "id, interaction_id, file_name, content_type, size_bytes, sha256, storage, created_by, created_at";

fn attachment_row<DB: Backend>(r: &mut Reader<DB>) -> Decoded<AttachmentRow> {
    Ok(AttachmentRow {
        id: r.text()?,
        interaction_id: r.text()?,
        file_name: r.text()?,
        content_type: r.text()?,
        size_bytes: r.count()?,
        sha256: r.text()?,
        storage: r.parsed(AttachmentStorage::parse)?,
        created_by: r.text()?,
        created_at: r.time()?,
    })
}

fn subject_parts(subject: &Subject) -> (Option<&str>, Option<&str>) {
    match subject {
        Subject::Instance(id) => (Some(id), None),
        Subject::Contact(id) => (None, Some(id)),
    }
}

pub(in crate::store) async fn insert_interaction<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    row: &InteractionRow,
) -> StoreResult<()> {
    let (instance, contact) = subject_parts(&row.subject);
    let stmt = Stmt::new(
        "INSERT INTO crm_interactions (tenant_id, id, instance_id, contact_id, kind, author, occurred_at, body, \
         duration_seconds, outcome, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .arg(tenant.as_str())
    .arg(&row.id)
    .arg(instance)
    .arg(contact)
    .arg(row.kind.as_str())
    .arg(&row.author)
    .arg(row.occurred_at)
    .arg(&row.body)
    .arg(row.duration_seconds)
    .arg(row.outcome.clone())
    .arg(row.created_at);
    store.write_one(stmt).await.map(drop)
}

pub(in crate::store) async fn interaction<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<InteractionRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        INTERACTION_COLS,
        " FROM crm_interactions WHERE tenant_id = $1 AND id = $2"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_one(stmt, interaction_row).await
}

pub(in crate::store) async fn interactions<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    query: &InteractionQuery,
) -> StoreResult<Page<InteractionRow>> {
    let limit = page_size(query.limit);
    let mut stmt =
        Stmt::new(concat_sql!("SELECT ", INTERACTION_COLS, " FROM crm_interactions WHERE tenant_id = $1"))
            .arg(tenant.as_str());
    match &query.subject {
        Subject::Instance(id) => stmt.push(" AND instance_id = ").bind(id),
        Subject::Contact(id) => stmt.push(" AND contact_id = ").bind(id),
    };
    if let Some(after) = &query.after {
        let (at, id) = parse_interaction_cursor(after)?;
        stmt.push(" AND (occurred_at, id) < (").bind(at).push(", ").bind(id).push(")");
    }
    stmt.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").bind(limit + 1);
    let mut items = store.read_all(stmt, interaction_row).await?;
    let limit = limit as usize;
    let next = (items.len() > limit).then(|| {
        let last = &items[limit - 1];
        Cursor(format!("n.{}.{}", last.occurred_at.timestamp_micros(), last.id))
    });
    items.truncate(limit);
    Ok(Page { items, next })
}

/// `n.<microseconds>.<id>`, as [`interactions`] hands it out.
fn parse_interaction_cursor(cursor: &Cursor) -> StoreResult<(DateTime<Utc>, String)> {
    let mut parts = cursor.as_str().splitn(3, '.');
    let (Some("n"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    match micros.parse().ok().and_then(DateTime::from_timestamp_micros) {
        Some(at) if !id.is_empty() => Ok((at, id.to_owned())),
        _ => Err(StoreError::InvalidCursor),
    }
}

/// Where a timeline page ended: the last item's time and which stream and key it came from.
enum TimelineMark {
    History { at: DateTime<Utc>, seq: i64 },
    Interaction { at: DateTime<Utc>, id: String },
}

impl TimelineMark {
    fn of(item: &TimelineItem) -> Cursor {
        match item {
            TimelineItem::History(h) => Cursor(format!("t.{}.h.{}", h.created_at.timestamp_micros(), h.seq)),
            TimelineItem::Interaction(i) => {
                Cursor(format!("t.{}.n.{}", i.occurred_at.timestamp_micros(), i.id))
            }
        }
    }

    fn parse(cursor: &Cursor) -> StoreResult<Self> {
        let mut parts = cursor.as_str().splitn(4, '.');
        let (Some("t"), Some(micros), Some(kind), Some(key)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StoreError::InvalidCursor);
        };
        let at =
            micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or(StoreError::InvalidCursor)?;
        match kind {
            "h" => match key.parse::<i64>() {
                Ok(seq) if seq >= 1 => Ok(Self::History { at, seq }),
                _ => Err(StoreError::InvalidCursor),
            },
            "n" if !key.is_empty() => Ok(Self::Interaction { at, id: key.to_owned() }),
            _ => Err(StoreError::InvalidCursor),
        }
    }
}

/// Timeline order, newest first: time, then interactions before history at one instant, then
/// key, all descending.
fn timeline_order(a: &TimelineItem, b: &TimelineItem) -> std::cmp::Ordering {
    use TimelineItem::{History, Interaction};
    b.at().cmp(&a.at()).then_with(|| match (a, b) {
        (History(a), History(b)) => b.seq.cmp(&a.seq),
        (Interaction(a), Interaction(b)) => b.id.cmp(&a.id),
        (Interaction(_), History(_)) => std::cmp::Ordering::Less,
        (History(_), Interaction(_)) => std::cmp::Ordering::Greater,
    })
}

pub(in crate::store) async fn timeline<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    instance_id: &str,
    query: &TimelineQuery,
) -> StoreResult<Page<TimelineItem>> {
    let limit = page_size(query.limit);
    let mark = query.after.as_ref().map(TimelineMark::parse).transpose()?;

    let mut history = Stmt::new(concat_sql!(
        "SELECT ",
        HISTORY_COLS,
        " FROM crm_history WHERE tenant_id = $1 AND instance_id = $2"
    ))
    .arg(tenant.as_str())
    .arg(instance_id);
    let mut notes = Stmt::new(concat_sql!(
        "SELECT ",
        INTERACTION_COLS,
        " FROM crm_interactions WHERE tenant_id = $1 AND instance_id = $2"
    ))
    .arg(tenant.as_str())
    .arg(instance_id);
    match &mark {
        None => {}
        Some(TimelineMark::History { at, seq }) => {
            history.push(" AND (created_at, seq) < (").bind(*at).push(", ").bind(*seq).push(")");
            notes.push(" AND occurred_at < ").bind(*at);
        }
        Some(TimelineMark::Interaction { at, id }) => {
            history.push(" AND created_at <= ").bind(*at);
            notes.push(" AND (occurred_at, id) < (").bind(*at).push(", ").bind(id).push(")");
        }
    }
    history.push(" ORDER BY created_at DESC, seq DESC LIMIT ").bind(limit + 1);
    notes.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").bind(limit + 1);

    let history = store.read_all(history, history_row).await?;
    let notes = store.read_all(notes, interaction_row).await?;
    let mut items: Vec<TimelineItem> = history
        .into_iter()
        .map(TimelineItem::History)
        .chain(notes.into_iter().map(TimelineItem::Interaction))
        .collect();
    items.sort_by(timeline_order);
    let limit = limit as usize;
    let next = (items.len() > limit).then(|| TimelineMark::of(&items[limit - 1]));
    items.truncate(limit);
    Ok(Page { items, next })
}

pub(in crate::store) async fn put_attachment_chunk<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    attachment_id: &str,
    seq: u64,
    bytes: Vec<u8>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_attachment_chunks (tenant_id, attachment_id, seq, bytes) VALUES ($1, $2, $3, $4)",
    )
    .arg(tenant.as_str())
    .arg(attachment_id)
    .arg(seq)
    .arg(bytes);
    store.write_one(stmt).await.map(drop)
}

pub(in crate::store) async fn attachment_chunk<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    attachment_id: &str,
    seq: u64,
) -> StoreResult<Option<Vec<u8>>> {
    let stmt = Stmt::new(
        "SELECT bytes FROM crm_attachment_chunks WHERE tenant_id = $1 AND attachment_id = $2 AND seq = $3",
    )
    .arg(tenant.as_str())
    .arg(attachment_id)
    .arg(seq);
    store.read_one(stmt, |r| r.bytes()).await
}

pub(in crate::store) async fn delete_attachment_chunks<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    attachment_id: &str,
) -> StoreResult<u64> {
    let stmt = Stmt::new("DELETE FROM crm_attachment_chunks WHERE tenant_id = $1 AND attachment_id = $2")
        .arg(tenant.as_str())
        .arg(attachment_id);
    store.write_one(stmt).await
}

pub(in crate::store) async fn insert_attachment<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    row: &AttachmentRow,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_attachments (tenant_id, id, interaction_id, file_name, content_type, size_bytes, sha256, \
         storage, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .arg(tenant.as_str())
    .arg(&row.id)
    .arg(&row.interaction_id)
    .arg(&row.file_name)
    .arg(&row.content_type)
    .arg(row.size_bytes)
    .arg(&row.sha256)
    .arg(row.storage.as_str())
    .arg(&row.created_by)
    .arg(row.created_at);
    store.write_one(stmt).await.map(drop)
}

pub(in crate::store) async fn attachment<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<AttachmentRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        ATTACHMENT_COLS,
        " FROM crm_attachments WHERE tenant_id = $1 AND id = $2"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_one(stmt, attachment_row).await
}

pub(in crate::store) async fn attachments<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    interaction_id: &str,
) -> StoreResult<Vec<AttachmentRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        ATTACHMENT_COLS,
        " FROM crm_attachments WHERE tenant_id = $1 AND interaction_id = $2 ORDER BY id"
    ))
    .arg(tenant.as_str())
    .arg(interaction_id);
    store.read_all(stmt, attachment_row).await
}

// ---- reports -----------------------------------------------------------------------------------

/// Appends `AND <alias>.definition_id = … AND <alias>.entity = …` for the filter's scope.
fn push_scope(stmt: &mut Stmt, filter: &ReportFilter, definition: &'static str, entity: &'static str) {
    if let Some(id) = &filter.definition {
        stmt.push(definition).bind(id);
    }
    if let Some(name) = &filter.entity {
        stmt.push(entity).bind(name);
    }
}

/// Binds the tenant (the statement ends in `… tenant_id = `), then appends the report window on
/// `column`: `AND column >= from AND column < to`.
fn push_tenant_window(stmt: &mut Stmt, tenant: &TenantId, column: &'static str, filter: &ReportFilter) {
    stmt.bind(tenant.as_str())
        .push(" AND ")
        .push(column)
        .push(" >= ")
        .bind(filter.from)
        .push(" AND ")
        .push(column)
        .push(" < ")
        .bind(filter.to);
}

/// Appends `<column> IN (…)`, or a false condition for an empty list (`IN ()` is not SQL).
fn push_in(stmt: &mut Stmt, column: &'static str, values: &[String]) {
    if values.is_empty() {
        stmt.push("1 = 0");
        return;
    }
    stmt.push(column).push(" IN (");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            stmt.push(", ");
        }
        stmt.bind(value);
    }
    stmt.push(")");
}

fn counted(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(in crate::store) async fn report_funnel<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    filter: &ReportFilter,
) -> StoreResult<Vec<FunnelRow>> {
    let mut stmt = Stmt::new(
        "SELECT v.stage, COUNT(*), COALESCE(SUM(CASE WHEN v.left_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN i.status = 'completed' AND ",
    );
    push_in(&mut stmt, "i.state", &filter.won);
    stmt.push(" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN i.status = 'completed' AND ");
    push_in(&mut stmt, "i.state", &filter.lost);
    stmt.push(
        " THEN 1 ELSE 0 END), 0) FROM crm_stage_visits v \
         JOIN crm_instances i ON i.tenant_id = v.tenant_id AND i.id = v.instance_id WHERE v.tenant_id = ",
    );
    push_tenant_window(&mut stmt, tenant, "v.entered_at", filter);
    push_scope(&mut stmt, filter, " AND v.definition_id = ", " AND v.entity = ");
    stmt.push(" GROUP BY v.stage ORDER BY COUNT(*) DESC, v.stage");
    store
        .read_all(stmt, |r| {
            Ok(FunnelRow {
                stage: r.text()?,
                entered: counted(r.int()?),
                moved_on: counted(r.int()?),
                won: counted(r.int()?),
                lost: counted(r.int()?),
            })
        })
        .await
}

/// `, won, lost` counts of moves into the filter's won and lost stages.
fn push_outcomes(stmt: &mut Stmt, filter: &ReportFilter) {
    stmt.push(", COALESCE(SUM(CASE WHEN ");
    push_in(stmt, "v.next_stage", &filter.won);
    stmt.push(" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN ");
    push_in(stmt, "v.next_stage", &filter.lost);
    stmt.push(" THEN 1 ELSE 0 END), 0)");
}

pub(in crate::store) async fn report_users<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    filter: &ReportFilter,
) -> StoreResult<Vec<UserRow>> {
    let mut stmt = Stmt::new("SELECT v.moved_by, COUNT(*)");
    push_outcomes(&mut stmt, filter);
    stmt.push(" FROM crm_stage_visits v WHERE v.tenant_id = ");
    push_tenant_window(&mut stmt, tenant, "v.left_at", filter);
    push_scope(&mut stmt, filter, " AND v.definition_id = ", " AND v.entity = ");
    stmt.push(" GROUP BY v.moved_by ORDER BY COUNT(*) DESC, v.moved_by");
    store
        .read_all(stmt, |r| {
            Ok(UserRow {
                user: r.opt_text()?,
                moved_on: counted(r.int()?),
                won: counted(r.int()?),
                lost: counted(r.int()?),
            })
        })
        .await
}

/// `WITH b (k, lo, hi) AS (VALUES …)`: the periods as a table, so one statement counts them all.
fn periods_table(periods: &[(DateTime<Utc>, DateTime<Utc>)]) -> Stmt {
    let mut stmt = Stmt::new("WITH b (k, lo, hi) AS (VALUES ");
    for (k, (lo, hi)) in periods.iter().enumerate() {
        if k > 0 {
            stmt.push(", ");
        }
        stmt.push("(").bind(k as i64).push(", ").bind(*lo).push(", ").bind(*hi).push(")");
    }
    stmt.push(") ");
    stmt
}

pub(in crate::store) async fn report_periods<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    filter: &ReportFilter,
    periods: &[(DateTime<Utc>, DateTime<Utc>)],
) -> StoreResult<Vec<PeriodCounts>> {
    let mut counts = vec![PeriodCounts { started: 0, moved_on: 0, won: 0, lost: 0 }; periods.len()];
    if periods.is_empty() {
        return Ok(counts);
    }
    // Instances started: their first visit (history entry 1 is `instance_created`).
    let mut started = periods_table(periods);
    started
        .push("SELECT b.k, COUNT(v.seq) FROM b JOIN crm_stage_visits v ON v.tenant_id = ")
        .bind(tenant.as_str())
        .push(" AND v.seq = 1 AND v.entered_at >= b.lo AND v.entered_at < b.hi");
    push_scope(&mut started, filter, " AND v.definition_id = ", " AND v.entity = ");
    started.push(" GROUP BY b.k");
    for (k, n) in store.read_all(started, |r| Ok((r.int()?, r.int()?))).await? {
        if let Some(c) = usize::try_from(k).ok().and_then(|k| counts.get_mut(k)) {
            c.started = counted(n);
        }
    }
    let mut moves = periods_table(periods);
    moves.push("SELECT b.k, COUNT(v.seq)");
    push_outcomes(&mut moves, filter);
    moves
        .push(" FROM b JOIN crm_stage_visits v ON v.tenant_id = ")
        .bind(tenant.as_str())
        .push(" AND v.left_at >= b.lo AND v.left_at < b.hi");
    push_scope(&mut moves, filter, " AND v.definition_id = ", " AND v.entity = ");
    moves.push(" GROUP BY b.k");
    for (k, moved, won, lost) in
        store.read_all(moves, |r| Ok((r.int()?, r.int()?, r.int()?, r.int()?))).await?
    {
        if let Some(c) = usize::try_from(k).ok().and_then(|k| counts.get_mut(k)) {
            c.moved_on = counted(moved);
            c.won = counted(won);
            c.lost = counted(lost);
        }
    }
    Ok(counts)
}

pub(in crate::store) async fn report_stage_times<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    filter: &ReportFilter,
) -> StoreResult<Vec<StageTimeRow>> {
    // Nearest-rank percentiles: the median is the ceil(n/2)-th duration, the 90th percentile the
    // ceil(9n/10)-th, both as integer arithmetic that SQLite and PostgreSQL agree on.
    let mut stmt = Stmt::new(
        "SELECT stage, n, rn, duration_us FROM (SELECT v.stage, v.duration_us, \
         ROW_NUMBER() OVER (PARTITION BY v.stage ORDER BY v.duration_us) AS rn, \
         COUNT(*) OVER (PARTITION BY v.stage) AS n FROM crm_stage_visits v WHERE v.tenant_id = ",
    );
    push_tenant_window(&mut stmt, tenant, "v.left_at", filter);
    push_scope(&mut stmt, filter, " AND v.definition_id = ", " AND v.entity = ");
    stmt.push(") t WHERE rn = (n + 1) / 2 OR rn = (9 * n + 9) / 10 ORDER BY stage, rn");
    let rows =
        store.read_all(stmt, |r| Ok((r.text()?, r.int()?, r.int()?, r.opt_int()?.unwrap_or(0)))).await?;
    let mut out: Vec<StageTimeRow> = Vec::new();
    for (stage, n, rn, duration) in rows {
        if out.last().is_none_or(|last| last.stage != stage) {
            out.push(StageTimeRow { stage, visits: counted(n), median_us: 0, p90_us: 0 });
        }
        let Some(row) = out.last_mut() else { continue };
        if rn == (n + 1) / 2 {
            row.median_us = duration;
        }
        if rn == (9 * n + 9) / 10 {
            row.p90_us = duration;
        }
    }
    Ok(out)
}

pub(in crate::store) async fn report_sla<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    filter: &ReportFilter,
) -> StoreResult<Vec<SlaReportRow>> {
    let mut stmt = Stmt::new(
        "SELECT s.scope, COALESCE(SUM(CASE WHEN s.status = 'met' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN s.status = 'breached' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN s.status IN ('on_track', 'at_risk') THEN 1 ELSE 0 END), 0) \
         FROM crm_sla s JOIN crm_instances i ON i.tenant_id = s.tenant_id AND i.id = s.instance_id \
         WHERE s.tenant_id = ",
    );
    push_tenant_window(&mut stmt, tenant, "s.started_at", filter);
    push_scope(&mut stmt, filter, " AND i.definition_id = ", " AND i.entity = ");
    stmt.push(" GROUP BY s.scope ORDER BY s.scope");
    store
        .read_all(stmt, |r| {
            Ok(SlaReportRow {
                scope: r.text()?,
                met: counted(r.int()?),
                breached: counted(r.int()?),
                open: counted(r.int()?),
            })
        })
        .await
}
