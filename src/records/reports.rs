//! Reports from history: the funnel, moves by user, counts by period in a time zone, time in
//! stage and SLA compliance; rendered as a table, JSON, CSV, or (funnel and time in stage) SVG.
//!
//! Every report reads a time window `[from, to)`: the funnel counts visits that began in it; by
//! user, by period and time in stage count moves (visits that ended) in it; SLA compliance counts
//! clocks that started in it. Won and lost are stage names given with the query (by default
//! `won`/`closed_won` and `lost`/`closed_lost`, the names the shipped definitions use).

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value as Json, json};

use super::{RecordsError, RecordsResult, invalid};
use crate::store::{
    FunnelRow, PeriodCounts, RecordStore, ReportFilter, SlaReportRow, StageTimeRow, TenantId, UserRow,
};

/// The most periods one by-period report may have (a day per period covers almost three years).
pub const MAX_PERIODS: usize = 1000;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Per stage: visits entered, moved on, and of those closed won or lost (`funnel`).
    Funnel,
    /// Moves, wins and losses by the assignee when the instance moved (`by-user`).
    ByUser,
    /// Instances started, moves, wins and losses per day, week or month (`by-period`).
    ByPeriod,
    /// Median and 90th percentile of time spent per stage (`time-in-stage`).
    TimeInStage,
    /// SLA clocks met, breached and open per stage or entity (`sla`).
    Sla,
}

impl ReportKind {
    /// Every report, in the order `crm report --help` lists them.
    pub const ALL: [Self; 5] = [Self::Funnel, Self::ByUser, Self::ByPeriod, Self::TimeInStage, Self::Sla];

    /// The report's name on the command line and in URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Funnel => "funnel",
            Self::ByUser => "by-user",
            Self::ByPeriod => "by-period",
            Self::TimeInStage => "time-in-stage",
            Self::Sla => "sla",
        }
    }

    /// The report named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The length of one period of a by-period report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// A calendar day in the report's time zone.
    #[default]
    Day,
    /// An ISO week (Monday to Sunday) in the report's time zone.
    Week,
    /// A calendar month in the report's time zone.
    Month,
}

impl Period {
    /// `day`, `week` or `month`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The period named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Day, Self::Week, Self::Month].into_iter().find(|p| p.as_str() == name)
    }

    /// The first day of the period that holds `date`.
    fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => date,
            Self::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Self::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The first day of the next period.
    fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Day => start.succ_opt(),
            Self::Week => start.checked_add_signed(Duration::days(7)),
            Self::Month => start.checked_add_months(chrono::Months::new(1)),
        }
    }
}

/// A report to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    /// Which report.
    pub kind: ReportKind,
    /// The window, instances and won and lost stages.
    pub filter: ReportFilter,
    /// The time zone of periods (and of dates given as bounds).
    pub tz: Tz,
    /// The period of a by-period report.
    pub period: Period,
}

impl ReportQuery {
    /// A query of `kind` over `[from, to)`, in UTC, by day, with the default won and lost stages.
    pub fn new(kind: ReportKind, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            kind,
            filter: ReportFilter {
                from,
                to,
                definition: None,
                entity: None,
                won: vec!["won".into(), "closed_won".into()],
                lost: vec!["lost".into(), "closed_lost".into()],
            },
            tz: Tz::UTC,
            period: Period::Day,
        }
    }
}

/// One period of a by-period report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodRow {
    /// Its first day, in the report's time zone.
    pub start: NaiveDate,
    /// What happened in it.
    pub counts: PeriodCounts,
}

/// A report's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// [`ReportKind::Funnel`].
    Funnel(Vec<FunnelRow>),
    /// [`ReportKind::ByUser`].
    ByUser(Vec<UserRow>),
    /// [`ReportKind::ByPeriod`].
    ByPeriod(Vec<PeriodRow>),
    /// [`ReportKind::TimeInStage`].
    TimeInStage(Vec<StageTimeRow>),
    /// [`ReportKind::Sla`].
    Sla(Vec<SlaReportRow>),
}

/// Parses a report bound: an RFC 3339 time, or a date (`2026-03-01`) meaning its first instant
/// in `tz`.
pub fn parse_bound(text: &str, tz: Tz) -> RecordsResult<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.to_utc());
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => day_start(date, tz),
        Err(_) => Err(invalid(format!("`{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))),
    }
}

/// Parses an IANA time zone name (`Europe/Paris`, `UTC`).
pub fn parse_tz(name: &str) -> RecordsResult<Tz> {
    name.parse().map_err(|_| invalid(format!("`{name}` is not an IANA time zone (such as `Europe/Paris`)")))
}

/// The first instant of `date` in `tz` (where midnight is skipped by a clock change, the first
/// instant that exists that day).
fn day_start(date: NaiveDate, tz: Tz) -> RecordsResult<DateTime<Utc>> {
    (0..=180)
        .step_by(15)
        .find_map(|minutes| {
            let local = date.and_hms_opt(0, 0, 0)? + Duration::minutes(minutes);
            tz.from_local_datetime(&local).earliest()
        })
        .map(|t| t.to_utc())
        .ok_or_else(|| invalid(format!("{date} has no start in {tz}")))
}

/// A period's first local day and its `[start, end)` in UTC.
type PeriodBounds = (NaiveDate, DateTime<Utc>, DateTime<Utc>);

/// The periods of `[from, to)` in `tz`: each `[start, end)` clipped to the window, with its first
/// local day.
fn periods(query: &ReportQuery) -> RecordsResult<Vec<PeriodBounds>> {
    let (from, to) = (query.filter.from, query.filter.to);
    let mut start = query.period.start_of(from.with_timezone(&query.tz).date_naive());
    let mut out = Vec::new();
    while let Some(next) = query.period.next(start) {
        let lo = day_start(start, query.tz)?;
        if lo >= to {
            break;
        }
        let hi = day_start(next, query.tz)?;
        if out.len() == MAX_PERIODS {
            return Err(invalid(format!(
                "the window has more than {MAX_PERIODS} periods of a {}: choose a longer period or a shorter window",
                query.period.as_str()
            )));
        }
        out.push((start, lo.max(from), hi.min(to)));
        start = next;
    }
    Ok(out)
}

/// Runs a report.
pub async fn run_report<S: RecordStore>(
    store: &S,
    tenant: &TenantId,
    query: &ReportQuery,
) -> RecordsResult<Report> {
    let filter = &query.filter;
    if filter.to <= filter.from {
        return Err(invalid("the end of the window (`to`) must be after its start (`from`)"));
    }
    Ok(match query.kind {
        ReportKind::Funnel => Report::Funnel(store.report_funnel(tenant, filter).await?),
        ReportKind::ByUser => Report::ByUser(store.report_users(tenant, filter).await?),
        ReportKind::ByPeriod => {
            let periods = periods(query)?;
            let bounds: Vec<_> = periods.iter().map(|(_, lo, hi)| (*lo, *hi)).collect();
            let counts = store.report_periods(tenant, filter, &bounds).await?;
            Report::ByPeriod(
                periods
                    .into_iter()
                    .zip(counts)
                    .map(|((start, _, _), counts)| PeriodRow { start, counts })
                    .collect(),
            )
        }
        ReportKind::TimeInStage => Report::TimeInStage(store.report_stage_times(tenant, filter).await?),
        ReportKind::Sla => Report::Sla(store.report_sla(tenant, filter).await?),
    })
}

fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// `3d 4h`, `2h 5m`, `40s`: a duration a person reads at a glance.
fn in_words(micros: i64) -> String {
    let s = micros.max(0) / 1_000_000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

impl Report {
    /// The report's kind.
    pub fn kind(&self) -> ReportKind {
        match self {
            Self::Funnel(_) => ReportKind::Funnel,
            Self::ByUser(_) => ReportKind::ByUser,
            Self::ByPeriod(_) => ReportKind::ByPeriod,
            Self::TimeInStage(_) => ReportKind::TimeInStage,
            Self::Sla(_) => ReportKind::Sla,
        }
    }

    /// Column names and rows as text cells (the table and CSV share them).
    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let n = |v: u64| v.to_string();
        match self {
            Self::Funnel(rows) => (
                vec!["stage", "entered", "moved_on", "won", "lost"],
                rows.iter()
                    .map(|r| vec![r.stage.clone(), n(r.entered), n(r.moved_on), n(r.won), n(r.lost)])
                    .collect(),
            ),
            Self::ByUser(rows) => (
                vec!["user", "moved_on", "won", "lost"],
                rows.iter()
                    .map(|r| vec![r.user.clone().unwrap_or_default(), n(r.moved_on), n(r.won), n(r.lost)])
                    .collect(),
            ),
            Self::ByPeriod(rows) => (
                vec!["period", "started", "moved_on", "won", "lost"],
                rows.iter()
                    .map(|r| {
                        let c = &r.counts;
                        vec![r.start.to_string(), n(c.started), n(c.moved_on), n(c.won), n(c.lost)]
                    })
                    .collect(),
            ),
            Self::TimeInStage(rows) => (
                vec!["stage", "visits", "median_seconds", "p90_seconds"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.stage.clone(),
                            n(r.visits),
                            seconds(r.median_us).to_string(),
                            seconds(r.p90_us).to_string(),
                        ]
                    })
                    .collect(),
            ),
            Self::Sla(rows) => (
                vec!["scope", "met", "breached", "open", "compliance"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.scope.clone(),
                            n(r.met),
                            n(r.breached),
                            n(r.open),
                            compliance(r).map_or(String::new(), |c| format!("{c:.3}")),
                        ]
                    })
                    .collect(),
            ),
        }
    }

    /// The rows as JSON: `{"report": kind, "rows": [...]}`.
    pub fn to_json(&self) -> Json {
        let rows: Vec<Json> = match self {
            Self::Funnel(rows) => rows
                .iter()
                .map(|r| json!({"stage": r.stage, "entered": r.entered, "moved_on": r.moved_on, "won": r.won, "lost": r.lost}))
                .collect(),
            Self::ByUser(rows) => rows
                .iter()
                .map(|r| json!({"user": r.user, "moved_on": r.moved_on, "won": r.won, "lost": r.lost}))
                .collect(),
            Self::ByPeriod(rows) => rows
                .iter()
                .map(|r| {
                    let c = &r.counts;
                    json!({"period": r.start.to_string(), "started": c.started, "moved_on": c.moved_on, "won": c.won, "lost": c.lost})
                })
                .collect(),
            Self::TimeInStage(rows) => rows
                .iter()
                .map(|r| json!({"stage": r.stage, "visits": r.visits, "median_seconds": seconds(r.median_us), "p90_seconds": seconds(r.p90_us)}))
                .collect(),
            Self::Sla(rows) => rows
                .iter()
                .map(|r| json!({"scope": r.scope, "met": r.met, "breached": r.breached, "open": r.open, "compliance": compliance(r)}))
                .collect(),
        };
        json!({"report": self.kind().as_str(), "rows": rows})
    }

    /// The rows as CSV with a header line (RFC 4180 quoting).
    pub fn to_csv(&self) -> String {
        let (header, rows) = self.cells();
        let quote = |cell: &str| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.to_owned()
            }
        };
        let mut out = header.join(",");
        out.push('\n');
        for row in rows {
            out.push_str(&row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }

    /// The rows as an aligned text table; durations in words.
    pub fn to_table(&self) -> String {
        let (mut header, mut rows) = self.cells();
        if let Self::TimeInStage(stages) = self {
            header = vec!["stage", "visits", "median", "p90"];
            for (row, stage) in rows.iter_mut().zip(stages) {
                row[2] = in_words(stage.median_us);
                row[3] = in_words(stage.p90_us);
            }
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
                .collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&mut out, &header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
        for row in &rows {
            line(&mut out, row);
        }
        if rows.is_empty() {
            out.push_str("(nothing in this window)\n");
        }
        out
    }

    /// The funnel or time in stage as an SVG bar chart.
    pub fn to_svg(&self) -> RecordsResult<String> {
        match self {
            Self::Funnel(rows) => chart::funnel(rows),
            Self::TimeInStage(rows) => chart::stage_times(rows),
            other => Err(RecordsError::NoRendering { kind: other.kind().as_str(), format: "svg" }),
        }
    }
}

/// Met over decided (met + breached); `None` when nothing was decided.
fn compliance(row: &SlaReportRow) -> Option<f64> {
    let decided = row.met + row.breached;
    (decided > 0).then(|| row.met as f64 / decided as f64)
}

/// SVG bar charts (plotters' SVG backend; text as `<text>` elements, no system fonts).
mod chart {
    use plotters::prelude::*;

    use super::{RecordsError, RecordsResult};
    use crate::store::{FunnelRow, StageTimeRow};

    const WIDTH: u32 = 800;
    const HEIGHT: u32 = 480;
    const LIGHT: RGBColor = RGBColor(158, 202, 225);
    const DARK: RGBColor = RGBColor(49, 130, 189);

    fn failed(error: impl std::fmt::Display) -> RecordsError {
        RecordsError::Io(std::io::Error::other(format!("drawing the chart failed: {error}")))
    }

    /// Bars per category: the first series wide and light, the second narrower and dark in front.
    fn bars(
        title: &str,
        y_desc: &str,
        names: &[String],
        series: [(&str, Vec<f64>); 2],
    ) -> RecordsResult<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE).map_err(failed)?;
            let top = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0_f64, f64::max);
            let top = if top > 0.0 { top * 1.1 } else { 1.0 };
            let n = names.len().max(1);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(64)
                .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
                .map_err(failed)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .y_desc(y_desc)
                .draw()
                .map_err(failed)?;
            for (k, ((label, values), color)) in series.iter().zip([LIGHT, DARK]).enumerate() {
                let inset = if k == 0 { 8 } else { 22 };
                chart
                    .draw_series(values.iter().enumerate().map(|(i, v)| {
                        let mut bar = Rectangle::new(
                            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v)],
                            color.filled(),
                        );
                        bar.set_margin(0, 0, inset, inset);
                        bar
                    }))
                    .map_err(failed)?
                    .label(*label)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(failed)?;
            root.present().map_err(failed)?;
        }
        Ok(svg)
    }

    pub(super) fn funnel(rows: &[FunnelRow]) -> RecordsResult<String> {
        let names: Vec<String> = rows.iter().map(|r| r.stage.clone()).collect();
        bars(
            "Funnel",
            "visits",
            &names,
            [
                ("entered", rows.iter().map(|r| r.entered as f64).collect()),
                ("moved on", rows.iter().map(|r| r.moved_on as f64).collect()),
            ],
        )
    }

    pub(super) fn stage_times(rows: &[StageTimeRow]) -> RecordsResult<String> {
        let names: Vec<String> = rows.iter().map(|r| r.stage.clone()).collect();
        let hours = |us: i64| us as f64 / 3.6e9;
        bars(
            "Time in stage",
            "hours",
            &names,
            [
                ("90th percentile", rows.iter().map(|r| hours(r.p90_us)).collect()),
                ("median", rows.iter().map(|r| hours(r.median_us)).collect()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_time_zone_and_clip_to_the_window() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let from = parse_bound("2026-03-07", tz).unwrap();
        let to = parse_bound("2026-03-10", tz).unwrap();
        let mut query = ReportQuery::new(ReportKind::ByPeriod, from, to);
        query.tz = tz;
        let days = periods(&query).unwrap();
        let starts: Vec<String> = days.iter().map(|(d, lo, _)| format!("{d} {lo}")).collect();
        // 8 March 2026 is the switch to daylight time: that day has 23 hours.
        assert_eq!(
            starts,
            [
                "2026-03-07 2026-03-07 05:00:00 UTC",
                "2026-03-08 2026-03-08 05:00:00 UTC",
                "2026-03-09 2026-03-09 04:00:00 UTC"
            ]
        );
        query.period = Period::Month;
        let months = periods(&query).unwrap();
        assert_eq!(months.len(), 1);
        assert_eq!((months[0].1, months[0].2), (from, to));
    }

    #[test]
    fn durations_read_in_words() {
        assert_eq!(in_words(40_000_000), "40s");
        assert_eq!(in_words(7_500_000_000), "2h 5m");
        assert_eq!(in_words(3 * 86_400_000_000 + 4 * 3_600_000_000), "3d 4h");
    }
}
