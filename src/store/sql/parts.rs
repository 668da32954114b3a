//! The instance-scoped parts of a commit: gateway tokens, approvals, timers, SLA clocks,
//! escalations and the assignment, each written in the commit's transaction.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{Conn, exactly_one};
use crate::store::backend::{Backend, Stmt};
use crate::store::{
    ApprovalWrite, AssignmentChange, NewEscalation, SlaWrite, StoreResult, TimerWrite, TokenWrite,
};

/// Rows per multi-row `INSERT`: few statements per commit, far below both databases' limits on
/// bound parameters.
pub(super) const ROWS_PER_INSERT: usize = 100;

/// The tenant, instance and time every instance-scoped row of a commit shares.
pub(super) struct Scope<'a> {
    tenant: &'a str,
    instance: &'a str,
    at: DateTime<Utc>,
}

impl<'a> Scope<'a> {
    /// The scope of one instance's writes at `at`.
    pub(super) fn new(tenant: &'a str, instance: &'a str, at: DateTime<Utc>) -> Self {
        Scope { tenant, instance, at }
    }

    /// A statement with the tenant as `$1` and the instance as `$2`.
    pub(super) fn stmt(&self, sql: &'static str) -> Stmt {
        Stmt::new(sql).arg(self.tenant).arg(self.instance)
    }

    /// A statement with the tenant as `$1`, the instance as `$2` and the commit's time as `$3`.
    pub(super) fn stamped(&self, sql: &'static str) -> Stmt {
        self.stmt(sql).arg(self.at)
    }
}

/// Applies token writes in order; consecutive starts (a fork) go in one statement.
pub(super) async fn write_tokens<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    writes: &[TokenWrite],
) -> StoreResult<()> {
    let mut rest = writes;
    while let Some(first) = rest.first() {
        let starts =
            rest.iter().take_while(|w| matches!(w, TokenWrite::Start { .. })).count().min(ROWS_PER_INSERT);
        if starts == 0 {
            write_token::<DB>(conn, scope, first).await?;
            rest = &rest[1..];
            continue;
        }
        let mut stmt = scope.stamped(
            "INSERT INTO crm_tokens (tenant_id, instance_id, created_at, entered_at, status, id, gateway, branch, \
             stage) VALUES ",
        );
        for (n, write) in rest[..starts].iter().enumerate() {
            if let TokenWrite::Start { id, gateway, branch, stage } = write {
                stmt.push(if n == 0 {
                    "($1, $2, $3, $3, 'active', "
                } else {
                    ", ($1, $2, $3, $3, 'active', "
                });
                stmt.bind(id).push(", ").bind(gateway).push(", ").bind(branch).push(", ");
                stmt.bind(stage.as_ref()).push(")");
            }
        }
        DB::execute(conn, stmt).await?;
        rest = &rest[starts..];
    }
    Ok(())
}

/// One token write other than a start.
async fn write_token<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &TokenWrite,
) -> StoreResult<()> {
    match write {
        TokenWrite::Start { id, gateway, branch, stage } => {
            let stmt = scope
                .stamped(
                    "INSERT INTO crm_tokens (tenant_id, instance_id, created_at, entered_at, status, id, gateway, \
                     branch, stage) VALUES ($1, $2, $3, $3, 'active', $4, $5, $6, $7)",
                )
                .arg(id)
                .arg(gateway)
                .arg(branch)
                .arg(stage.as_ref());
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        TokenWrite::Set { id, stage, status, entered_at } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_tokens SET stage = $5, status = $6, entered_at = $7, \
                     completed_at = CASE WHEN $6 = 'active' THEN NULL ELSE $3 END \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $4 AND status = 'active' \
                     AND ended_at IS NULL",
                )
                .arg(id)
                .arg(stage.as_ref())
                .arg(status.as_str())
                .arg(*entered_at);
            exactly_one::<DB>(conn, stmt, "active token", id).await
        }
        TokenWrite::End { status } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_tokens SET ended_at = $3, \
                     completed_at = CASE WHEN status = 'active' THEN $3 ELSE completed_at END, \
                     status = CASE WHEN status = 'active' THEN $4 ELSE status END \
                     WHERE tenant_id = $1 AND instance_id = $2 AND ended_at IS NULL",
                )
                .arg(status.as_str());
            DB::execute(conn, stmt).await?;
            Ok(())
        }
    }
}

pub(super) async fn write_approval<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &ApprovalWrite,
) -> StoreResult<()> {
    match write {
        ApprovalWrite::Request { transition, assignees, requested_by } => {
            let stmt = scope
                .stamped(
                    "INSERT INTO crm_approval_requests (tenant_id, instance_id, requested_at, transition, round, \
                     status, assignees, requested_by) SELECT $1, $2, $3, $4, COALESCE(MAX(round), 0) + 1, 'pending', \
                     $5, $6 FROM crm_approval_requests WHERE tenant_id = $1 AND instance_id = $2 AND transition = $4",
                )
                .arg(transition)
                .arg(Json::from(assignees.clone()))
                .arg(requested_by.as_ref());
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        ApprovalWrite::Respond { id, transition, approver, decision, comment } => {
            let stmt = scope
                .stamped(
                    "INSERT INTO crm_approvals (tenant_id, instance_id, created_at, id, transition, round, approver, \
                     decision, comment) SELECT $1, $2, $3, $4, $5, round, $6, $7, $8 FROM crm_approval_requests \
                     WHERE tenant_id = $1 AND instance_id = $2 AND transition = $5 AND status = 'pending'",
                )
                .arg(id)
                .arg(transition)
                .arg(approver)
                .arg(decision.as_str())
                .arg(comment.as_ref());
            exactly_one::<DB>(conn, stmt, "pending approval request for transition", transition).await
        }
        ApprovalWrite::Resolve { transition, status } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_approval_requests SET status = $5, resolved_at = $3 \
                     WHERE tenant_id = $1 AND instance_id = $2 AND transition = $4 AND status = 'pending'",
                )
                .arg(transition)
                .arg(status.as_str());
            exactly_one::<DB>(conn, stmt, "pending approval request for transition", transition).await
        }
    }
}

pub(super) async fn write_timer<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &TimerWrite,
) -> StoreResult<()> {
    match write {
        TimerWrite::Schedule { id, kind, trigger_at, payload } => {
            let stmt = scope
                .stmt(
                    "INSERT INTO crm_timers (tenant_id, instance_id, id, type, trigger_at, payload) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .arg(id)
                .arg(kind)
                .arg(*trigger_at)
                .arg(payload);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        TimerWrite::Cancel { id } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_timers SET processed_at = $3, cancelled = TRUE \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $4 AND processed_at IS NULL",
                )
                .arg(id);
            exactly_one::<DB>(conn, stmt, "pending timer", id).await
        }
        TimerWrite::CancelKind { kind } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_timers SET processed_at = $3, cancelled = TRUE \
                     WHERE tenant_id = $1 AND instance_id = $2 AND type = $4 AND processed_at IS NULL",
                )
                .arg(kind);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        TimerWrite::Fired { id } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_timers SET processed_at = $3, locked_until = NULL \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $4 AND processed_at IS NULL",
                )
                .arg(id);
            exactly_one::<DB>(conn, stmt, "pending timer", id).await
        }
    }
}

pub(super) async fn write_sla<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &SlaWrite,
) -> StoreResult<()> {
    match write {
        SlaWrite::Start { id, scope: measured, duration_minutes, started_at, at_risk_at, breach_at } => {
            let stmt = scope
                .stmt(
                    "INSERT INTO crm_sla (tenant_id, instance_id, id, scope, duration_minutes, started_at, \
                     at_risk_at, breach_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'on_track')",
                )
                .arg(id)
                .arg(measured)
                .arg(*duration_minutes)
                .arg(*started_at)
                .arg(*at_risk_at)
                .arg(*breach_at);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        SlaWrite::Retime { id, duration_minutes, at_risk_at, breach_at } => {
            let stmt = scope
                .stmt(
                    "UPDATE crm_sla SET duration_minutes = $4, at_risk_at = $5, breach_at = $6 \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $3",
                )
                .arg(id)
                .arg(*duration_minutes)
                .arg(*at_risk_at)
                .arg(*breach_at);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        SlaWrite::Set { id, status, stopped_at } => {
            let stmt = scope
                .stmt(
                    "UPDATE crm_sla SET status = $4, stopped_at = $5 \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $3",
                )
                .arg(id)
                .arg(status.as_str())
                .arg(*stopped_at);
            // A clock is a report derived from the timers, which are what enforce the SLA; one
            // missing (an instance from before clocks were recorded) must not block the instance.
            DB::execute(conn, stmt).await?;
            Ok(())
        }
    }
}

pub(super) async fn write_assignment<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    change: &AssignmentChange,
) -> StoreResult<()> {
    let retire = scope.stmt(
        "UPDATE crm_assignments SET active = FALSE WHERE tenant_id = $1 AND instance_id = $2 AND active",
    );
    DB::execute(conn, retire).await?;
    if let AssignmentChange::Assign { user_id, assigned_by } = change {
        let stmt = scope
            .stamped(
                "INSERT INTO crm_assignments (tenant_id, instance_id, assigned_at, user_id, assigned_by, active) \
                 VALUES ($1, $2, $3, $4, $5, TRUE)",
            )
            .arg(user_id)
            .arg(assigned_by.as_ref());
        DB::execute(conn, stmt).await?;
    }
    Ok(())
}

pub(super) async fn write_escalation<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    new: &NewEscalation,
) -> StoreResult<()> {
    let stmt = scope
        .stamped(
            "INSERT INTO crm_escalations (tenant_id, instance_id, escalated_at, id, level, from_user_id, \
             to_user_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .arg(&new.id)
        .arg(new.level)
        .arg(new.from_user_id.as_ref())
        .arg(new.to_user_id.as_ref())
        .arg(&new.reason);
    DB::execute(conn, stmt).await?;
    Ok(())
}
