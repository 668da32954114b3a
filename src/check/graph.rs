//! Graph rules on the lowered IR: terminal stages, reachability, ways out, gateway joins and
//! conditions that overlap or can never hold.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::check::locate::{Locator, ptr};
use crate::check::lower::Lowered;
use crate::check::satisfiable::{Tri, can_both_hold, can_hold};
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::ir::data::FieldId;
use crate::ir::expr::{CmpMode, CmpOp, Expr};
use crate::ir::value::Value;
use crate::ir::{Definition, EntityId, StageId, TransitionId, Trigger};

/// Earlier transitions one automatic transition is compared with at most, when conditions cannot
/// be indexed: with [`PAIR_BUDGET_PER_STAGE`], the cap that keeps the ambiguity rule linear.
const PAIR_BUDGET_PER_TRANSITION: usize = 64;

/// Pairs of automatic transitions leaving one stage compared at most (every pair of up to 447).
const PAIR_BUDGET_PER_STAGE: usize = 100_000;

/// A condition's top-level `data.field == literal`: two conditions pinning one field to different
/// literals can never both hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct EqKey<'e> {
    field: FieldId,
    literal: Literal<'e>,
}

/// The literals an [`EqKey`] compares (floats are left out: `1 == 1.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Literal<'e> {
    Bool(bool),
    Int(i64),
    Str(&'e str),
}

/// Why a condition can never hold, when it is a field compared with a value its `enum` lacks.
struct EnumMiss {
    field: String,
    literal: String,
    help: String,
}

/// The first `data.field == literal` in `expr` (outside a `NOT`) whose field's `enum` does not
/// list the literal, with a did-you-mean when the literal is a near miss of a listed value.
fn outside_enum(expr: &Expr, schema: &crate::ir::DataSchema) -> Option<EnumMiss> {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().find_map(|e| outside_enum(e, schema)),
        Expr::Compare { op: CmpOp::Eq, lhs, rhs, .. } => {
            let (id, value) = match (&**lhs, &**rhs) {
                (Expr::Field { id, keys }, Expr::Const(value))
                | (Expr::Const(value), Expr::Field { id, keys })
                    if keys.is_empty() =>
                {
                    (*id, value)
                }
                _ => return None,
            };
            let field = schema.fields().get(id.index())?;
            if field.allowed.is_empty() || field.allowed.iter().any(|allowed| same_literal(allowed, value)) {
                return None;
            }
            let allowed: Vec<String> = field.allowed.iter().map(literal_text).collect();
            let literal = literal_text(value);
            let near = match value {
                Value::Str(text) => field
                    .allowed
                    .iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(&**s),
                        _ => None,
                    })
                    .find(|s| s.eq_ignore_ascii_case(text))
                    .or_else(|| {
                        crate::diagnostic::did_you_mean(
                            text,
                            field.allowed.iter().filter_map(|v| match v {
                                Value::Str(s) => Some(&**s),
                                _ => None,
                            }),
                        )
                    })
                    .map(|s| format!("'{s}'")),
                _ => None,
            };
            const SHOWN: usize = 8;
            let mut list = allowed.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
            if allowed.len() > SHOWN {
                list.push_str(&format!(" and {} more", allowed.len() - SHOWN));
            }
            let help = match near {
                Some(near) => format!("did you mean {near}? The `enum` of `{}` is {list}", field.name),
                None => format!(
                    "the `enum` of `{}` is {list}; use one of them, or add {literal} to it",
                    field.name
                ),
            };
            Some(EnumMiss { field: field.name.clone(), literal, help })
        }
        _ => None,
    }
}

/// Whether two literals are the same value (numbers compared numerically).
fn same_literal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ => false,
    }
}

/// A literal as a condition writes it: `'web'`, `42`, `true`.
fn literal_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => format!("'{s}'"),
        Value::List(_) | Value::Object(_) => "a list or object".to_owned(),
    }
}

/// The first `data.field == literal` conjunct of `expr`, if any.
fn eq_key(expr: &Expr) -> Option<EqKey<'_>> {
    match expr {
        Expr::And(items) => items.iter().find_map(eq_key),
        Expr::Compare { op: CmpOp::Eq, mode: CmpMode::Natural, lhs, rhs } => {
            let (field, value) = match (&**lhs, &**rhs) {
                (Expr::Field { id, keys }, Expr::Const(value))
                | (Expr::Const(value), Expr::Field { id, keys })
                    if keys.is_empty() =>
                {
                    (*id, value)
                }
                _ => return None,
            };
            let literal = match value {
                Value::Bool(b) => Literal::Bool(*b),
                Value::Int(i) => Literal::Int(*i),
                Value::Str(s) => Literal::Str(s),
                _ => return None,
            };
            Some(EqKey { field, literal })
        }
        _ => None,
    }
}

/// Completes the IR (terminal stages, `"*"` transitions) and reports graph findings.
pub(crate) fn check(lowered: Lowered, locate: &Locator<'_>, out: &mut Vec<Diagnostic>) -> Definition {
    let Lowered {
        mut definition,
        stage_pointers,
        wildcard_transitions,
        graph_incomplete,
        incomplete_entities,
        declared_terminal,
    } = lowered;
    mark_terminal(&mut definition, &declared_terminal, locate, &stage_pointers, out);
    expand_wildcards(&mut definition, &wildcard_transitions);
    let cx = Cx { definition: &definition, locate, stage_pointers: &stage_pointers };
    for e in 0..definition.entities.len() {
        let entity_id = EntityId(e as u32);
        // A transition that lost a stage to an unknown name leaves stages behind it unreachable and
        // the stage it meant without a way out: echoes of the name's error, not findings of their own.
        let incomplete = graph_incomplete || incomplete_entities.contains(&entity_id);
        if !incomplete {
            cx.unreachable(entity_id, out);
        }
        if !incomplete && matches!(declared_terminal.get(e), Some(Some(_))) {
            cx.no_way_out(entity_id, out);
        }
    }
    cx.ambiguous_transitions(out);
    cx.always_false(out);
    if !graph_incomplete && incomplete_entities.is_empty() {
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
        // A set: `terminal` may list every one of 100,000 stages.
        let terminal_set: Option<HashSet<StageId>> = declared_here.map(|t| t.iter().copied().collect());
        for &stage_id in &stage_ids {
            let stage = &definition.stages[stage_id.index()];
            let has_exit = !stage.outgoing.is_empty() || !stage.forks.is_empty();
            let terminal = match &terminal_set {
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

    /// Automatic transitions leaving one stage whose conditions can both hold. Each transition is
    /// reported once, against the first earlier one it overlaps. Candidates are indexed by a
    /// top-level `data.field == literal` (two different literals on one field never overlap), and
    /// the pairs examined are capped ([`PAIR_BUDGET_PER_TRANSITION`], [`PAIR_BUDGET_PER_STAGE`]),
    /// so the rule stays linear; a capped stage gets a note saying what was left out.
    fn ambiguous_transitions(&self, out: &mut Vec<Diagnostic>) {
        let schema = &self.definition.data;
        let mut reported: HashSet<(usize, usize)> = HashSet::new();
        for (stage_index, stage) in self.definition.stages.iter().enumerate() {
            let automatic: Vec<TransitionId> = stage
                .outgoing
                .iter()
                .copied()
                .filter(|&t| self.definition.transition(t).trigger == Trigger::Auto)
                .collect();
            if automatic.len() < 2 {
                continue;
            }
            let keys: Vec<Option<EqKey<'_>>> = automatic
                .iter()
                .map(|&t| self.definition.transition(t).condition.as_ref().and_then(|c| eq_key(&c.expr)))
                .collect();
            // Earlier transitions by key, by keyed field, and those without a key, in order.
            let mut by_key: HashMap<EqKey<'_>, Vec<usize>> = HashMap::new();
            let mut by_field: BTreeMap<FieldId, Vec<usize>> = BTreeMap::new();
            let mut unkeyed: Vec<usize> = Vec::new();
            let mut considered = 0usize;
            let mut skipped = 0usize;
            for (j, &b) in automatic.iter().enumerate() {
                let tb = self.definition.transition(b);
                // Those that could overlap `b`: every earlier one, unless `b` pins a field to one
                // value, which rules out the earlier ones pinning it to another.
                let candidates: Box<dyn Iterator<Item = usize> + '_> = match keys[j] {
                    None => Box::new(0..j),
                    Some(key) => Box::new(
                        by_key
                            .get(&key)
                            .map_or(&[][..], Vec::as_slice)
                            .iter()
                            .copied()
                            .chain(unkeyed.iter().copied())
                            .chain(
                                by_field
                                    .iter()
                                    .filter(move |(field, _)| **field != key.field)
                                    .flat_map(|(_, list)| list.iter().copied()),
                            ),
                    ),
                };
                for (n, i) in candidates.enumerate() {
                    if n >= PAIR_BUDGET_PER_TRANSITION || considered >= PAIR_BUDGET_PER_STAGE {
                        skipped += 1;
                        break;
                    }
                    considered += 1;
                    let a = automatic[i];
                    let ta = self.definition.transition(a);
                    let pair = (a.index().min(b.index()), a.index().max(b.index()));
                    if ta.to == tb.to || reported.contains(&pair) {
                        continue;
                    }
                    let both = can_both_hold(
                        ta.condition.as_ref().map(|c| &c.expr),
                        tb.condition.as_ref().map(|c| &c.expr),
                        schema,
                    );
                    if both == Tri::Yes {
                        reported.insert(pair);
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
                        break;
                    }
                }
                match keys[j] {
                    Some(key) => {
                        by_field.entry(key.field).or_default().push(j);
                        by_key.entry(key).or_default().push(j);
                    }
                    None => unkeyed.push(j),
                }
            }
            if skipped > 0 {
                out.push(
                    Diagnostic::new(
                        Code::AmbiguousTransitions,
                        self.stage_span(StageId(stage_index as u32)),
                        format!(
                            "{} automatic transitions leave `{}`: only {considered} pairs were checked for ambiguity",
                            automatic.len(),
                            stage.name
                        ),
                    )
                    .with_severity(Severity::Note)
                    .with_label(format!("{skipped} transitions were not compared with every earlier one"))
                    .with_help("give the transitions exclusive `data.field == value` conditions, or split the stage"),
                );
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
                let diagnostic = match outside_enum(&condition.expr, schema) {
                    Some(miss) => Diagnostic::new(
                        Code::AlwaysFalse,
                        self.locate.value(&pointer),
                        format!(
                            "this condition can never hold: `data.{}` is never {}, which its `enum` does not list",
                            miss.field, miss.literal
                        ),
                    )
                    .with_label(format!("compares `data.{}` with {}", miss.field, miss.literal))
                    .with_help(miss.help),
                    None => Diagnostic::new(
                        Code::AlwaysFalse,
                        self.locate.value(&pointer),
                        "this condition can never hold",
                    )
                    .with_label("no data allowed by `dataSchema` satisfies it")
                    .with_help("check the bounds and enum values of the fields it reads"),
                };
                out.push(diagnostic);
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
