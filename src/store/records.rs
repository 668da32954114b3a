//! [`RecordStore`]: what interactions, attachments, timelines and reports persist and read,
//! beside the engine's [`Store`]. Its own trait, so the rows of `crate::records` stay apart from
//! the engine's unit of work.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{
    AnyStore, AttachmentRow, Backend, FunnelRow, InteractionQuery, InteractionRow, Page, PeriodCounts,
    ReportFilter, SlaReportRow, SqlStore, StageTimeRow, Store, StoreResult, TenantId, TimelineItem,
    TimelineQuery, UserRow, sql,
};

/// Interactions, attachments, timelines and report queries. Every method is scoped to one tenant.
pub trait RecordStore: Store {
    /// Logs an interaction. Its instance or contact must exist for the tenant (else
    /// [`StoreError::Database`](super::StoreError::Database), a foreign-key refusal).
    fn insert_interaction(
        &self,
        tenant: &TenantId,
        row: &InteractionRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// One interaction.
    fn interaction(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<InteractionRow>>> + Send;

    /// One subject's interactions, newest first, in keyset pages.
    fn interactions(
        &self,
        tenant: &TenantId,
        query: &InteractionQuery,
    ) -> impl Future<Output = StoreResult<Page<InteractionRow>>> + Send;

    /// An instance's history and interactions together, newest first, in keyset pages.
    fn timeline(
        &self,
        tenant: &TenantId,
        instance_id: &str,
        query: &TimelineQuery,
    ) -> impl Future<Output = StoreResult<Page<TimelineItem>>> + Send;

    /// Stores chunk `seq` of an attachment kept in the database (before its row exists).
    fn put_attachment_chunk(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Chunk `seq` of an attachment kept in the database; `None` past the last.
    fn attachment_chunk(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
        seq: u64,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;

    /// Drops the chunks of an upload that failed; how many.
    fn delete_attachment_chunks(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Records a stored attachment (its bytes are already in place).
    fn insert_attachment(
        &self,
        tenant: &TenantId,
        row: &AttachmentRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// One attachment's metadata.
    fn attachment(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<AttachmentRow>>> + Send;

    /// An interaction's attachments, oldest first.
    fn attachments(
        &self,
        tenant: &TenantId,
        interaction_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<AttachmentRow>>> + Send;

    /// The funnel: per stage, visits entered in the window, moved on, and closed won or lost.
    fn report_funnel(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
    ) -> impl Future<Output = StoreResult<Vec<FunnelRow>>> + Send;

    /// Moves in the window by the assignee at the time of the move.
    fn report_users(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
    ) -> impl Future<Output = StoreResult<Vec<UserRow>>> + Send;

    /// Counts per period (`[start, end)` each), in the order given.
    fn report_periods(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> impl Future<Output = StoreResult<Vec<PeriodCounts>>> + Send;

    /// Median and 90th percentile of time in stage, of visits that ended in the window.
    fn report_stage_times(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
    ) -> impl Future<Output = StoreResult<Vec<StageTimeRow>>> + Send;

    /// SLA clocks started in the window: met, breached, open, by scope.
    fn report_sla(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
    ) -> impl Future<Output = StoreResult<Vec<SlaReportRow>>> + Send;
}

impl<DB: Backend> RecordStore for SqlStore<DB> {
    async fn insert_interaction(&self, tenant: &TenantId, row: &InteractionRow) -> StoreResult<()> {
        sql::records::insert_interaction(self, tenant, row).await
    }

    async fn interaction(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<InteractionRow>> {
        sql::records::interaction(self, tenant, id).await
    }

    async fn interactions(
        &self,
        tenant: &TenantId,
        query: &InteractionQuery,
    ) -> StoreResult<Page<InteractionRow>> {
        sql::records::interactions(self, tenant, query).await
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        instance_id: &str,
        query: &TimelineQuery,
    ) -> StoreResult<Page<TimelineItem>> {
        sql::records::timeline(self, tenant, instance_id, query).await
    }

    async fn put_attachment_chunk(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> StoreResult<()> {
        sql::records::put_attachment_chunk(self, tenant, attachment_id, seq, bytes).await
    }

    async fn attachment_chunk(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
        seq: u64,
    ) -> StoreResult<Option<Vec<u8>>> {
        sql::records::attachment_chunk(self, tenant, attachment_id, seq).await
    }

    async fn delete_attachment_chunks(&self, tenant: &TenantId, attachment_id: &str) -> StoreResult<u64> {
        sql::records::delete_attachment_chunks(self, tenant, attachment_id).await
    }

    async fn insert_attachment(&self, tenant: &TenantId, row: &AttachmentRow) -> StoreResult<()> {
        sql::records::insert_attachment(self, tenant, row).await
    }

    async fn attachment(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<AttachmentRow>> {
        sql::records::attachment(self, tenant, id).await
    }

    async fn attachments(&self, tenant: &TenantId, interaction_id: &str) -> StoreResult<Vec<AttachmentRow>> {
        sql::records::attachments(self, tenant, interaction_id).await
    }

    async fn report_funnel(&self, tenant: &TenantId, filter: &ReportFilter) -> StoreResult<Vec<FunnelRow>> {
        sql::records::report_funnel(self, tenant, filter).await
    }

    async fn report_users(&self, tenant: &TenantId, filter: &ReportFilter) -> StoreResult<Vec<UserRow>> {
        sql::records::report_users(self, tenant, filter).await
    }

    async fn report_periods(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> StoreResult<Vec<PeriodCounts>> {
        sql::records::report_periods(self, tenant, filter, periods).await
    }

    async fn report_stage_times(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
    ) -> StoreResult<Vec<StageTimeRow>> {
        sql::records::report_stage_times(self, tenant, filter).await
    }

    async fn report_sla(&self, tenant: &TenantId, filter: &ReportFilter) -> StoreResult<Vec<SlaReportRow>> {
        sql::records::report_sla(self, tenant, filter).await
    }
}

/// Runs the same call on whichever store `self` is.
macro_rules! dispatch {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            AnyStore::Sqlite(store) => store.$method($($arg),*).await,
            AnyStore::Postgres(store) => store.$method($($arg),*).await,
        }
    };
}

impl RecordStore for AnyStore {
    async fn insert_interaction(&self, tenant: &TenantId, row: &InteractionRow) -> StoreResult<()> {
        dispatch!(self.insert_interaction(tenant, row))
    }

    async fn interaction(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<InteractionRow>> {
        dispatch!(self.interaction(tenant, id))
    }

    async fn interactions(
        &self,
        tenant: &TenantId,
        query: &InteractionQuery,
    ) -> StoreResult<Page<InteractionRow>> {
        dispatch!(self.interactions(tenant, query))
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        instance_id: &str,
        query: &TimelineQuery,
    ) -> StoreResult<Page<TimelineItem>> {
        dispatch!(self.timeline(tenant, instance_id, query))
    }

    async fn put_attachment_chunk(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> StoreResult<()> {
        dispatch!(self.put_attachment_chunk(tenant, attachment_id, seq, bytes))
    }

    async fn attachment_chunk(
        &self,
        tenant: &TenantId,
        attachment_id: &str,
        seq: u64,
    ) -> StoreResult<Option<Vec<u8>>> {
        dispatch!(self.attachment_chunk(tenant, attachment_id, seq))
    }

    async fn delete_attachment_chunks(&self, tenant: &TenantId, attachment_id: &str) -> StoreResult<u64> {
        dispatch!(self.delete_attachment_chunks(tenant, attachment_id))
    }

    async fn insert_attachment(&self, tenant: &TenantId, row: &AttachmentRow) -> StoreResult<()> {
        dispatch!(self.insert_attachment(tenant, row))
    }

    async fn attachment(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<AttachmentRow>> {
        dispatch!(self.attachment(tenant, id))
    }

    async fn attachments(&self, tenant: &TenantId, interaction_id: &str) -> StoreResult<Vec<AttachmentRow>> {
        dispatch!(self.attachments(tenant, interaction_id))
    }

    async fn report_funnel(&self, tenant: &TenantId, filter: &ReportFilter) -> StoreResult<Vec<FunnelRow>> {
        dispatch!(self.report_funnel(tenant, filter))
    }

    async fn report_users(&self, tenant: &TenantId, filter: &ReportFilter) -> StoreResult<Vec<UserRow>> {
        dispatch!(self.report_users(tenant, filter))
    }

    async fn report_periods(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> StoreResult<Vec<PeriodCounts>> {
        dispatch!(self.report_periods(tenant, filter, periods))
    }

    async fn report_stage_times(
        &self,
        tenant: &TenantId,
        filter: &ReportFilter,
    ) -> StoreResult<Vec<StageTimeRow>> {
        dispatch!(self.report_stage_times(tenant, filter))
    }

    async fn report_sla(&self, tenant: &TenantId, filter: &ReportFilter) -> StoreResult<Vec<SlaReportRow>> {
        dispatch!(self.report_sla(tenant, filter))
    }
}
