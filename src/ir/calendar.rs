//! Business-hours calendars: working days and hours in a time zone, minus holidays. From
//! `calendars.<name>`; an SLA with `"calendar": NAME` counts only working time.
//!
//! On a calendar a duration's whole days are **working days** (`"2 days"` from Friday 16:30 on a
//! Monday–Friday calendar is Tuesday 16:30), and the rest is **working time** (`"4 hours"` from
//! Friday 16:30 on a 9–17 calendar is Monday 12:30). Local times are converted with the zone's
//! rules, so due times stay right across daylight-saving changes: a working day is always the
//! same local hours, however long in UTC.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// The most days [`Calendar::add`] walks before giving up (a calendar whose holidays cover every
/// working day for a century cannot be met; the due time is then the end of time).
const MAX_DAYS_WALKED: u32 = 36_600;

/// A business-hours calendar. From `calendars.<name>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    /// The key in `calendars`.
    pub name: String,
    /// `timezone`: an IANA zone such as `Europe/Berlin`.
    pub zone: Tz,
    /// `days`: the working weekdays (never empty).
    pub days: Vec<Weekday>,
    /// `hours`: when work starts each working day, local time.
    pub opens: NaiveTime,
    /// `hours`: when work ends each working day, local time (after `opens`).
    pub closes: NaiveTime,
    /// `holidays`: local dates without work, sorted.
    pub holidays: Vec<NaiveDate>,
}

impl Calendar {
    /// Whether `date` (local) is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.days.contains(&date.weekday()) && self.holidays.binary_search(&date).is_err()
    }

    /// The length of a working day.
    pub fn day_length(&self) -> Duration {
        let seconds = (self.closes - self.opens).num_seconds();
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    }

    /// How much working time `duration` is on this calendar: a day is a working day.
    pub fn working_time(&self, duration: Duration) -> Duration {
        const DAY: u64 = 24 * 60 * 60;
        let seconds = duration.as_secs();
        let day = self.day_length().as_secs();
        Duration::from_secs((seconds / DAY).saturating_mul(day).saturating_add(seconds % DAY))
    }

    /// The duration that is `working` working time on this calendar, written with whole working
    /// days (the inverse of [`Calendar::working_time`]), so that shares and differences of
    /// durations ("75%" of "2 days", "2 days" less "1 hour") count working time.
    pub fn duration_of(&self, working: Duration) -> Duration {
        const DAY: u64 = 24 * 60 * 60;
        let day = self.day_length().as_secs().max(1);
        let seconds = working.as_secs();
        Duration::from_secs((seconds / day).saturating_mul(DAY).saturating_add(seconds % day))
    }

    /// `start` plus `duration` of working time: whole days as working days, the rest as working
    /// hours (see the module docs). A start outside working hours counts from the next opening.
    pub fn add(&self, start: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
        self.try_add(start, duration).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn try_add(&self, start: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
        const DAY: u64 = 24 * 60 * 60;
        let seconds = duration.as_secs();
        let (days, mut rest) = (seconds / DAY, seconds % DAY);
        // Where the clock stands: a working day and the working time already past on it.
        let (mut date, elapsed) = self.position(start)?;
        if elapsed.is_zero() && rest == 0 && days > 0 {
            // Whole days from an opening end at a closing: "1 day" from Monday 09:00 is Monday
            // 17:00 (the same working time as Tuesday 09:00, and what people expect to read).
            for _ in 1..days {
                date = self.next_working_day(date)?;
            }
            return Some(self.window(date)?.1);
        }
        for _ in 0..days {
            date = self.next_working_day(date)?;
        }
        let (open, close) = self.window(date)?;
        let mut at = open.checked_add_signed(elapsed)?.min(close);
        loop {
            let (_, close) = self.window(date)?;
            let left = u64::try_from((close - at).num_seconds()).unwrap_or(0);
            if rest <= left {
                return at.checked_add_signed(TimeDelta::seconds(i64::try_from(rest).ok()?));
            }
            rest -= left;
            date = self.next_working_day(date)?;
            at = self.window(date)?.0;
        }
    }

    /// The working day the clock stands on at `instant` and the working time already past on it:
    /// before opening counts from the opening, after closing (or on a day off) from the next
    /// working day's opening.
    fn position(&self, instant: DateTime<Utc>) -> Option<(NaiveDate, TimeDelta)> {
        let local = instant.with_timezone(&self.zone).date_naive();
        if self.is_working_day(local) {
            let (open, close) = self.window(local)?;
            if instant < close {
                return Some((local, (instant - open).max(TimeDelta::zero())));
            }
        }
        Some((self.next_working_day(local)?, TimeDelta::zero()))
    }

    /// The first working day after `date`.
    fn next_working_day(&self, date: NaiveDate) -> Option<NaiveDate> {
        let mut day = date;
        for _ in 0..MAX_DAYS_WALKED {
            day = day.succ_opt()?;
            if self.is_working_day(day) {
                return Some(day);
            }
        }
        None
    }

    /// Opening and closing of `date` as instants.
    fn window(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((self.instant(date.and_time(self.opens))?, self.instant(date.and_time(self.closes))?))
    }

    /// A local time as an instant: the earlier of an ambiguous time (clocks turned back), and for
    /// a time that does not exist (clocks turned forward) the moment the clocks jumped.
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        if let Some(at) = self.zone.from_local_datetime(&local).earliest() {
            return Some(at.with_timezone(&Utc));
        }
        // In a gap: the first local minute after it exists; gaps are at most a few hours.
        (1..=24 * 60).find_map(|minute| {
            let later = local.checked_add_signed(TimeDelta::minutes(minute))?;
            self.zone.from_local_datetime(&later).earliest().map(|at| at.with_timezone(&Utc))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nine_to_five(zone: Tz) -> Calendar {
        Calendar {
            name: "office".into(),
            zone,
            days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            opens: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            closes: NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
            holidays: vec![NaiveDate::from_ymd_opt(2026, 12, 25).expect("valid")],
        }
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("valid")
    }

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    #[test]
    fn working_hours_continue_on_the_next_working_day() {
        let cal = nine_to_five(chrono_tz::UTC);
        // Friday 2026-01-09 16:30 + 4 working hours: 30 minutes on Friday, 3.5 on Monday.
        assert_eq!(cal.add(utc(2026, 1, 9, 16, 30), hours(4)), utc(2026, 1, 12, 12, 30));
        // Exactly to closing time stays on the day.
        assert_eq!(cal.add(utc(2026, 1, 9, 16, 0), hours(1)), utc(2026, 1, 9, 17, 0));
        // Before opening counts from the opening; on Saturday from Monday's opening.
        assert_eq!(cal.add(utc(2026, 1, 7, 6, 0), hours(2)), utc(2026, 1, 7, 11, 0));
        assert_eq!(cal.add(utc(2026, 1, 10, 12, 0), hours(2)), utc(2026, 1, 12, 11, 0));
    }

    #[test]
    fn days_are_working_days_and_holidays_are_skipped() {
        let cal = nine_to_five(chrono_tz::UTC);
        // Friday 16:30 + 2 days is Tuesday 16:30.
        assert_eq!(cal.add(utc(2026, 1, 9, 16, 30), hours(48)), utc(2026, 1, 13, 16, 30));
        // From an opening, whole days end at a closing: Monday 09:00 + 2 days is Tuesday 17:00,
        // and from Saturday it counts from Monday's opening.
        assert_eq!(cal.add(utc(2026, 1, 5, 9, 0), hours(48)), utc(2026, 1, 6, 17, 0));
        assert_eq!(cal.add(utc(2026, 1, 10, 12, 0), hours(24)), utc(2026, 1, 12, 17, 0));
        // Thursday 2026-12-24 10:00 + 1 day skips Christmas (Friday) and the weekend.
        assert_eq!(cal.add(utc(2026, 12, 24, 10, 0), hours(24)), utc(2026, 12, 28, 10, 0));
    }

    #[test]
    fn shares_and_differences_count_working_time() {
        let cal = nine_to_five(chrono_tz::UTC);
        // "2 days" is 16 working hours; 75% of it is 12 working hours, a day and 4 hours.
        let two_days = hours(48);
        let share = cal.working_time(two_days).mul_f64(0.75);
        assert_eq!(cal.duration_of(share), hours(24 + 4));
        // "2 days" less "1 hour" is a day and 7 working hours.
        let less = cal.working_time(two_days) - cal.working_time(hours(1));
        assert_eq!(cal.duration_of(less), hours(24 + 7));
    }

    #[test]
    fn local_hours_hold_across_daylight_saving_changes() {
        let cal = nine_to_five(chrono_tz::Europe::Berlin);
        // Berlin moves to summer time on Sunday 2026-03-29: 9:00 is 8:00 UTC before, 7:00 after.
        // Friday 2026-03-27 16:00 local (15:00 UTC) + 2 working hours: Monday 10:00 local.
        assert_eq!(cal.add(utc(2026, 3, 27, 15, 0), hours(2)), utc(2026, 3, 30, 8, 0));
        // And back to winter time on Sunday 2026-10-25: Monday 10:00 local is 9:00 UTC.
        assert_eq!(cal.add(utc(2026, 10, 23, 14, 0), hours(2)), utc(2026, 10, 26, 9, 0));
    }
}
