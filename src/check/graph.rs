//! Graph rules on the lowered IR: terminal stages, reachability, ways out, gateway joins and
//! conditions that overlap or can never hold.

use std::collections::{HashSet, VecDeque};

use crate::check::locate::{Locator, ptr};
use crate::check::lower::Lowered;
use crate::check::satisfiable::{Tri, can_both_hold, can_hold};
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{Definition, EntityId, StageId, Trigger};

/// Completes the IR (terminal stages, `"*"` transitions) and reports graph findings.
pub(crate) fn check(lowered: Lowered, locate: &Locator<'_>, out: &mut Vec<Diagnostic>) -> Definition {
    let Lowered { mut definition, stage_pointers, wildcard_transitions, graph_incomplete, declared_terminal } =
        lowered;
    mark_terminal(&mut definition, &declared_terminal, locate, &stage_pointers, out);
    expand_wildcards(&mut definition, &wildcard_transitions);
    let cx = Cx { definition: &definition, locate, stage_pointers: &stage_pointers };
    for e in 0..definition.entities.len() {
        let entity_id = EntityId(e as u32);
        if !graph_incomplete {
            cx.unreachable(entity_id, out);
        }
        if matches!(declared_terminal.get(e), Some(Some(_))) {
            cx.no_way_out(entity_id, out);
        }
    }
    cx.ambiguous_transitions(out);
    cx.always_false(out);
    if !graph_incomplete {
        cx.branches_reach_join(out);
    }
    definition
}

struct Cx<'a> {
    definition: &'a Definition,
    locate: &'a Locator<'a>,
    stage_pointers: &'a [String],
}

/// Declared terminal stages, or (when an entity declares none) stages with no explicit way out.
fn mark_terminal(
    definition: &mut Definition,
    declared: &[Option<Vec<StageId>>],
    locate: &Locator<'_>,
    stage_pointers: &[String],
    out: &mut Vec<Diagnostic>,
) {
    for e in 0..definition.entities.len() {
        let stage_ids = definition.entities[e].stages.clone();
        let declared_here = declared.get(e).and_then(Option::as_ref);
        for &stage_id in &stage_ids {
            let stage = &definition.stages[stage_id.index()];
            let has_exit = !stage.outgoing.is_empty() || !stage.forks.is_empty();
            let terminal = match declared_here {
                Some(terminal) => terminal.contains(&stage_id),
                None => !has_exit,
            };
            if terminal && declared_here.is_some() && has_exit {
                let exit = stage
                    .outgoing
                    .first()
                    .map(|t| locate.key(&ptr!["transitions", &definition.transitions[t.index()].name]))
                    .or_else(|| {
                        stage
                            .forks
                            .first()
                            .map(|g| locate.key(&ptr!["gateways", &definition.gateways[g.index()].name]))
                    });
                let pointer = stage_pointers.get(stage_id.index()).cloned().unwrap_or_default();
                let mut diagnostic = Diagnostic::new(
                    Code::TerminalHasExit,
                    locate.value(&pointer),
                    format!("terminal stage `{}` has outgoing transitions", stage.name),
                )
                .with_label("declared terminal")
                .with_help("remove it from `terminal`, or remove the transitions leaving it");
                if let Some(exit) = exit {
                    diagnostic = diagnostic.with_secondary(exit, "leaves the terminal stage");
                }
                out.push(diagnostic);
            }
            definition.stages[stage_id.index()].terminal = terminal;
        }
    }
}

/// `"from": "*"` means every non-terminal stage of the entity other than the target.
fn expand_wildcards(definition: &mut Definition, wildcards: &[(crate::ir::TransitionId, EntityId)]) {
    for &(transition, entity) in wildcards {
        let to = definition.transitions[transition.index()].to;
        let from: Vec<StageId> = definition.entities[entity.index()]
            .stages
            .iter()
            .copied()
            .filter(|&s| s != to && !definition.stages[s.index()].terminal)
            .collect();
        for &stage in &from {
            definition.stages[stage.index()].outgoing.push(transition);
        }
        definition.transitions[transition.index()].from = from;
    }
}

impl Cx<'_> {
    fn stage_span(&self, stage: StageId) -> crate::diagnostic::Span {
        self.locate.value(self.stage_pointers.get(stage.index()).map(String::as_str).unwrap_or(""))
    }

    /// Stages one step from `stage`: transition targets, gateway joins and branch starts.
    fn successors(&self, stage: StageId) -> impl Iterator<Item = StageId> + '_ {
        let s = self.definition.stage(stage);
        let by_transition = s.outgoing.iter().map(|&t| self.definition.transition(t).to);
        let by_gateway = s.forks.iter().flat_map(|&g| {
            let gateway = self.definition.gateway(g);
            std::iter::once(gateway.join).chain(gateway.branches.iter().filter_map(|b| b.stage))
        });
        by_transition.chain(by_gateway)
    }

    fn reachable_from(&self, start: StageId, through_gateways: bool) -> HashSet<StageId> {
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(stage) = queue.pop_front() {
            let next: Vec<StageId> = if through_gateways {
                self.successors(stage).collect()
            } else {
                self.definition
                    .stage(stage)
                    .outgoing
                    .iter()
                    .map(|&t| self.definition.transition(t).to)
                    .collect()
            };
            for n in next {
                if seen.insert(n) {
                    queue.push_back(n);
                }
            }
        }
        seen
    }

    fn unreachable(&self, entity: EntityId, out: &mut Vec<Diagnostic>) {
        let e = self.definition.entity(entity);
        if e.initial.index() >= self.definition.stages.len() {
            return;
        }
        let reached = self.reachable_from(e.initial, true);
        for &stage in &e.stages {
            if !reached.contains(&stage) {
                let name = &self.definition.stage(stage).name;
                let initial = &self.definition.stage(e.initial).name;
                out.push(
                    Diagnostic::new(
                        Code::UnreachableStage,
                        self.stage_span(stage),
                        format!("stage `{name}` of `{}` can never be reached", e.name),
                    )
                    .with_label("no transition leads here from the initial stage")
                    .with_secondary(self.stage_span(e.initial), format!("initial stage `{initial}`"))
                    .with_help(format!("add a transition with `\"to\": \"{name}\"`, or remove the stage")),
                );
            }
        }
    }

    fn no_way_out(&self, entity: EntityId, out: &mut Vec<Diagnostic>) {
        let e = self.definition.entity(entity);
        for &stage in &e.stages {
            let s = self.definition.stage(stage);
            if !s.terminal && s.outgoing.is_empty() && s.forks.is_empty() {
                out.push(
                    Diagnostic::new(
                        Code::NoWayOut,
                        self.stage_span(stage),
                        format!("stage `{}` is not terminal but has no way out", s.name),
                    )
                    .with_label("instances would be stuck here")
                    .with_secondary(
                        self.locate.key(&ptr!["entities", &e.name, "terminal"]),
                        "terminal stages declared here",
                    )
                    .with_help(format!("add a transition from `{}`, or list it in `terminal`", s.name)),
                );
            }
        }
    }

    fn ambiguous_transitions(&self, out: &mut Vec<Diagnostic>) {
        let schema = &self.definition.data;
        let mut reported: HashSet<(usize, usize)> = HashSet::new();
        for stage in &self.definition.stages {
            let automatic: Vec<_> = stage
                .outgoing
                .iter()
                .copied()
                .filter(|&t| self.definition.transition(t).trigger == Trigger::Auto)
                .collect();
            for (i, &a) in automatic.iter().enumerate() {
                for &b in &automatic[i + 1..] {
                    let (first, second) = (a.min(b), a.max(b));
                    let ta = self.definition.transition(first);
                    let tb = self.definition.transition(second);
                    if ta.to == tb.to || reported.contains(&(first.index(), second.index())) {
                        continue;
                    }
                    let both = can_both_hold(
                        ta.condition.as_ref().map(|c| &c.expr),
                        tb.condition.as_ref().map(|c| &c.expr),
                        schema,
                    );
                    if both == Tri::Yes {
                        reported.insert((first.index(), second.index()));
                        out.push(
                            Diagnostic::new(Code::AmbiguousTransitions, self.locate.key(&ptr!["transitions", &tb.name]),
                                format!(
                                    "automatic transitions `{}` and `{}` both leave `{}` and their conditions can hold at once",
                                    ta.name, tb.name, stage.name
                                ))
                                .with_label(format!("goes to `{}`", self.definition.stage(tb.to).name))
                                .with_secondary(self.locate.key(&ptr!["transitions", &ta.name]),
                                    format!("goes to `{}`", self.definition.stage(ta.to).name))
                                .with_help("make the conditions exclusive, or make one of them `\"trigger\": \"manual\"`"),
                        );
                    }
                }
            }
        }
    }

    fn always_false(&self, out: &mut Vec<Diagnostic>) {
        let schema = &self.definition.data;
        // The pointer is only needed for a finding: build it then, not for every condition.
        let mut report = |condition: Option<&crate::ir::Condition>, pointer: &dyn Fn() -> String| {
            if let Some(condition) = condition
                && can_hold(Some(&condition.expr), schema) == Tri::No
            {
                let pointer = pointer();
                out.push(
                    Diagnostic::new(
                        Code::AlwaysFalse,
                        self.locate.value(&pointer),
                        "this condition can never hold",
                    )
                    .with_label("no data allowed by `dataSchema` satisfies it")
                    .with_help("check the bounds and enum values of the fields it reads"),
                );
            }
        };
        for t in &self.definition.transitions {
            report(t.condition.as_ref(), &|| ptr!["transitions", &t.name, "condition"]);
            for (i, guard) in t.guards.iter().enumerate() {
                if let crate::ir::Guard::Expression { condition, .. } = guard {
                    report(Some(condition), &|| ptr!["transitions", &t.name, "guards", i, "expression"]);
                }
            }
        }
        for g in &self.definition.gateways {
            report(g.condition.as_ref(), &|| ptr!["gateways", &g.name, "condition"]);
            for b in &g.branches {
                report(b.condition.as_ref(), &|| ptr!["gateways", &g.name, "branches", &b.name, "condition"]);
            }
        }
        for e in &self.definition.entities {
            for (i, x) in e.escalations.iter().enumerate() {
                report(x.condition.as_ref(), &|| {
                    ptr!["entities", &e.name, "automation", "escalation", i, "condition"]
                });
            }
        }
    }

    fn branches_reach_join(&self, out: &mut Vec<Diagnostic>) {
        for g in &self.definition.gateways {
            for b in &g.branches {
                let Some(start) = b.stage else { continue };
                if start == g.join || self.reachable_from(start, false).contains(&g.join) {
                    continue;
                }
                let join = &self.definition.stage(g.join).name;
                out.push(
                    Diagnostic::new(Code::BranchCannotJoin,
                        self.locate.value(&ptr!["gateways", &g.name, "branches", &b.name, "stage"]),
                        format!("branch `{}` of gateway `{}` can never reach its join `{join}`", b.name, g.name))
                        .with_label(format!("no transitions lead from `{}` to `{join}`", self.definition.stage(start).name))
                        .with_secondary(self.locate.value(&ptr!["gateways", &g.name, "join"]), "join declared here")
                        .with_help("add transitions from the branch's stages to the join, or end the branch with an action"),
                );
            }
        }
    }
}
