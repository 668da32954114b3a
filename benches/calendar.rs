//! Due-time computation for SLA timers: over a business calendar (`Sla::due` with the London
//! desk of `definitions/support-entitlements.json`: 09:00–17:00 UK time, Monday to Friday, bank
//! holidays, daylight saving) against the plain-duration baseline (the same `Sla::due` without a
//! calendar: one addition), side by side in the same run.
//!
//! Target (issue #14): ≤ 2 µs per timer over a business calendar.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nexus_crm::ir::Sla;

/// Start instants spread over a year at odd minutes: working hours, nights, weekends, holidays.
fn starts() -> Vec<DateTime<Utc>> {
    let first = Utc.with_ymd_and_hms(2026, 1, 1, 0, 7, 0).single().expect("a valid time");
    (0..997).map(|i| first + TimeDelta::minutes(i * 527)).collect()
}

/// The SLAs of the shipped support entitlement, with and without their calendar.
fn slas() -> (Vec<Sla>, Vec<Sla>) {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/definitions/support-entitlements.json"
    ))
    .expect("the shipped definition");
    let checked = nexus_crm::check::check_source(&source);
    let Some(def) = checked.definition else { panic!("the definition compiles: {:?}", checked.diagnostics) };
    let calendar: Vec<Sla> =
        def.stages.iter().filter_map(|s| s.sla.clone()).chain(def.entities[0].sla.clone()).collect();
    assert!(calendar.iter().all(|s| s.calendar.is_some()), "every SLA of the definition is on its calendar");
    let plain = calendar.iter().cloned().map(|s| Sla { calendar: None, ..s }).collect();
    (calendar, plain)
}

/// Durations a timer counts: at-risk and breach times of the SLAs by priority.
const DURATIONS: [u64; 6] = [3600, 4 * 3600, 8 * 3600, 2 * 86_400, 86_400 + 4 * 3600, 45 * 60];

fn per_timer(slas: &[Sla], starts: &[DateTime<Utc>]) -> Duration {
    let budget = Duration::from_secs(3);
    let timers = (slas.len() * starts.len() * DURATIONS.len()) as u32;
    let batch = support::time_per_call(budget, || {
        let mut last = starts[0];
        for sla in slas {
            for &start in starts {
                for seconds in DURATIONS {
                    last = sla.due(black_box(start), Duration::from_secs(seconds));
                }
            }
        }
        last
    });
    batch / timers
}

fn main() {
    let starts = starts();
    let (calendar, plain) = slas();
    let ours = per_timer(&calendar, &starts);
    let baseline = per_timer(&plain, &starts);
    println!(
        "due time per SLA timer ({} start times × {} durations × {} SLAs):",
        starts.len(),
        DURATIONS.len(),
        calendar.len()
    );
    println!("  over the business calendar (ours):  {}", support::human(ours));
    println!("  plain duration (baseline):          {}", support::human(baseline));
    println!(
        "  target: ≤ 2 µs per timer over a calendar: {}",
        if ours <= Duration::from_micros(2) { "met" } else { "missed" }
    );
}
