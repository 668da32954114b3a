//! `calendars`: business-hours calendars that SLAs count working time on.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir;
use crate::syntax::duration::parse_date;
use crate::syntax::model;

impl Cx<'_, '_> {
    /// Every valid calendar by name; an invalid one is reported and left out (SLAs naming it
    /// then report nothing more).
    pub(super) fn calendars(&mut self) -> HashMap<String, Arc<ir::Calendar>> {
        let mut calendars = HashMap::new();
        for (name, spec) in &self.file.calendars {
            if let Some(calendar) = self.calendar(name, spec) {
                calendars.insert(name.clone(), Arc::new(calendar));
            }
        }
        calendars
    }

    fn calendar(&mut self, name: &str, spec: &model::CalendarSpec) -> Option<ir::Calendar> {
        let at = ptr!["calendars", name];
        let zone = match Tz::from_str(spec.timezone.trim()) {
            Ok(zone) => Some(zone),
            Err(_) => {
                let help = unknown_name_help(
                    spec.timezone.trim(),
                    "time zone",
                    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()),
                );
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.value(&format!("{at}/timezone")),
                        format!("unknown time zone `{}`", spec.timezone),
                    )
                    .with_label("not an IANA time zone name")
                    .with_help_opt(
                        help.or_else(|| Some("write an IANA name such as \"Europe/Berlin\"".to_owned())),
                    ),
                );
                None
            }
        };
        let hours = parse_hours(&spec.hours);
        // A value not shaped `HH:MM-HH:MM` was reported by the schema's pattern already.
        if hours.is_none() && shaped_like_hours(&spec.hours) {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(&format!("{at}/hours")),
                    format!("invalid working hours `{}`", spec.hours),
                )
                .with_label("expected `HH:MM-HH:MM`, opening before closing")
                .with_help("e.g. \"09:00-17:00\"; a day of work ends on the day it starts"),
            );
        }
        let mut holidays = Vec::new();
        for (i, text) in spec.holidays.iter().enumerate() {
            match parse_date(text) {
                Ok(date) => holidays.push(date),
                Err(error) => self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.value(&format!("{at}/holidays/{i}")),
                        format!("invalid holiday `{text}`"),
                    )
                    .with_label(error.to_string())
                    .with_help("write a date as YYYY-MM-DD"),
                ),
            }
        }
        holidays.sort_unstable();
        holidays.dedup();
        let days: Vec<Weekday> = match &spec.days {
            Some(days) => days.iter().map(|d| d.weekday()).collect(),
            None => vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
        };
        if days.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(&format!("{at}/days")),
                    "a calendar without working days",
                )
                .with_label("no day to work on")
                .with_help("list the working days, e.g. [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]"),
            );
            return None;
        }
        let (opens, closes) = hours?;
        Some(ir::Calendar { name: name.to_owned(), zone: zone?, days, opens, closes, holidays })
    }

    /// The calendar an SLA names at `pointer`: [`Code::UnknownCalendar`] when none is declared
    /// by that name; `None` also for a declared but invalid one (reported already).
    pub(super) fn calendar_ref(&mut self, name: &str, pointer: &str) -> Option<Arc<ir::Calendar>> {
        if let Some(calendar) = self.calendars.get(name) {
            return Some(calendar.clone());
        }
        if !self.file.calendars.contains_key(name) {
            let help = unknown_name_help(name, "calendar", self.file.calendars.keys().map(String::as_str));
            self.push(
                Diagnostic::new(
                    Code::UnknownCalendar,
                    self.locate.value(pointer),
                    format!("unknown calendar `{name}`"),
                )
                .with_label("not declared in `calendars`")
                .with_help_opt(
                    help.or_else(|| Some("declare it under the top-level `calendars`".to_owned())),
                ),
            );
        }
        None
    }
}

/// `"09:00-17:00"` as opening and closing time, opening first.
fn parse_hours(text: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (open, close) = text.split_once('-')?;
    let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    let (open, close) = (time(open)?, time(close)?);
    (open < close).then_some((open, close))
}

/// Whether `text` has the shape the schema's pattern asks for (`HH:MM-HH:MM`, blanks allowed).
fn shaped_like_hours(text: &str) -> bool {
    let clock = |t: &str| {
        let t = t.trim().as_bytes();
        t.len() == 5 && t[2] == b':' && [0, 1, 3, 4].iter().all(|&i| t[i].is_ascii_digit())
    };
    text.split_once('-').is_some_and(|(open, close)| clock(open) && clock(close))
}
