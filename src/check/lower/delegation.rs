//! `delegation`: rules, their dates, and the chains and cycles they form.

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::check::lower::names::Names;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir;
use crate::syntax::duration::parse_date;

impl Cx<'_, '_> {
    pub(super) fn delegation(&mut self, names: &Names<'_>) -> ir::DelegationPolicy {
        let Some(spec) = &self.file.delegation else { return ir::DelegationPolicy::default() };
        let max_depth = spec.max_depth.unwrap_or(ir::MAX_DELEGATION_DEPTH);
        if max_depth > ir::MAX_DELEGATION_DEPTH {
            self.push(
                Diagnostic::new(
                    Code::DelegationTooDeep,
                    self.locate.value("/delegation/max_depth"),
                    format!(
                        "delegation depth {max_depth} exceeds the maximum of {}",
                        ir::MAX_DELEGATION_DEPTH
                    ),
                )
                .with_label(format!("at most {}", ir::MAX_DELEGATION_DEPTH))
                .with_help("chains longer than 3 hide who is responsible (seed BR-005)"),
            );
        }
        let mut rules = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            let at = ptr!["delegation", "rules", i];
            let start = rule.start.as_ref().and_then(|d| self.date(d, &format!("{at}/start")));
            let end = rule.end.as_ref().and_then(|d| self.date(d, &format!("{at}/end")));
            if let (Some(s), Some(e)) = (start, end)
                && e < s
            {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDateRange,
                        self.locate.value(&format!("{at}/end")),
                        format!("delegation ends ({e}) before it starts ({s})"),
                    )
                    .with_label("end before start")
                    .with_secondary(self.locate.value(&format!("{at}/start")), "starts here"),
                );
            }
            if rule.from == rule.to {
                self.push(
                    Diagnostic::new(
                        Code::DelegationCycle,
                        self.locate.value(&format!("{at}/to")),
                        format!("`{}` delegates to themselves", rule.from),
                    )
                    .with_label("delegating to oneself")
                    .with_secondary(self.locate.value(&format!("{at}/from")), "delegator"),
                );
            }
            let entities = rule
                .entities
                .iter()
                .enumerate()
                .filter_map(|(j, e)| self.entity_ref(e, &format!("{at}/entities/{j}"), names))
                .collect();
            rules.push(ir::DelegationRule {
                from: rule.from.clone(),
                to: rule.to.clone(),
                start,
                end,
                entities,
            });
        }
        // A zero depth is refused by the schema already; chains are then checked against the default.
        let effective_depth =
            if max_depth == 0 { ir::MAX_DELEGATION_DEPTH } else { max_depth.min(ir::MAX_DELEGATION_DEPTH) };
        self.delegation_chains(&rules, effective_depth);
        ir::DelegationPolicy { max_depth: effective_depth, rules }
    }

    fn date(&mut self, text: &str, pointer: &str) -> Option<chrono::NaiveDate> {
        match parse_date(text) {
            Ok(date) => Some(date),
            Err(error) => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDateRange,
                        self.locate.in_string(pointer, error.span()),
                        format!("invalid date `{text}`"),
                    )
                    .with_label(error.to_string())
                    .with_help("write dates as YYYY-MM-DD, e.g. \"2026-12-24\""),
                );
                None
            }
        }
    }

    /// Follows delegation rules whose date ranges overlap along the way; reports chains deeper
    /// than `max_depth` and cycles (other than self-delegation, reported already).
    fn delegation_chains(&mut self, rules: &[ir::DelegationRule], max_depth: u32) {
        let overlaps = |a: &ir::DelegationRule, b: &ir::DelegationRule| {
            let starts_before_end = |x: &ir::DelegationRule, y: &ir::DelegationRule| match (x.start, y.end) {
                (Some(s), Some(e)) => s <= e,
                _ => true,
            };
            let scopes_meet = a.entities.is_empty()
                || b.entities.is_empty()
                || a.entities.iter().any(|e| b.entities.contains(e));
            starts_before_end(a, b) && starts_before_end(b, a) && scopes_meet
        };
        let mut reported_cycle = false;
        let mut reported_depth = false;
        // Depth-first from every rule; paths are bounded by the number of rules.
        for start in 0..rules.len() {
            let mut stack: Vec<Vec<usize>> = vec![vec![start]];
            while let Some(path) = stack.pop() {
                let Some(&last) = path.last() else { continue };
                let depth = path.len() as u32;
                if depth > max_depth && !reported_depth {
                    reported_depth = true;
                    let chain = std::iter::once(rules[path[0]].from.as_str())
                        .chain(path.iter().map(|&i| rules[i].to.as_str()))
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(" → ");
                    self.push(
                        Diagnostic::new(
                            Code::DelegationTooDeep,
                            self.locate.value(&ptr!["delegation", "rules", last]),
                            format!(
                                "delegation chain {chain} is {depth} levels deep; the maximum is {max_depth}"
                            ),
                        )
                        .with_label("this delegation makes the chain too deep")
                        .with_secondary(
                            self.locate.value(&ptr!["delegation", "rules", path[0]]),
                            "chain starts here",
                        )
                        .with_help("delegate directly to the final delegatee"),
                    );
                }
                if depth > max_depth + 1 {
                    continue;
                }
                for next in 0..rules.len() {
                    if rules[next].from != rules[last].to || rules[next].from == rules[next].to {
                        continue;
                    }
                    if !path.iter().all(|&p| overlaps(&rules[p], &rules[next])) {
                        continue;
                    }
                    if rules[next].to == rules[path[0]].from || path.contains(&next) {
                        if !reported_cycle {
                            reported_cycle = true;
                            let chain = std::iter::once(rules[path[0]].from.as_str())
                                .chain(
                                    path.iter().chain(std::iter::once(&next)).map(|&i| rules[i].to.as_str()),
                                )
                                .map(|u| format!("`{u}`"))
                                .collect::<Vec<_>>()
                                .join(" → ");
                            self.push(
                                Diagnostic::new(
                                    Code::DelegationCycle,
                                    self.locate.value(&ptr!["delegation", "rules", next]),
                                    format!("delegations form a cycle: {chain}"),
                                )
                                .with_label("this delegation closes the cycle")
                                .with_secondary(
                                    self.locate.value(&ptr!["delegation", "rules", path[0]]),
                                    "cycle starts here",
                                )
                                .with_help("work would be routed in circles; remove one delegation"),
                            );
                        }
                        continue;
                    }
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}
