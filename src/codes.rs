//! The rule registry: one table maps each stable code to its rule.
//!
//! A code is never reused or renumbered; retired codes stay listed in `docs/rules/README.md`. Each rule's documentation lives in
//! `docs/rules/CODE.md` (What it does / Why is this bad / Example / Use instead); `crm explain CODE`
//! prints that page.

use std::fmt;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The definition is invalid and cannot be executed.
    Error,
    /// The definition compiles but probably does not do what its author meant.
    Warning,
    /// Not a problem: what a check left out or could not decide (e.g. a capped search).
    Note,
}

impl Severity {
    /// The lower-case name used in machine output (`"error"`, `"warning"`, `"note"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! rules {
    ($($variant:ident = $code:literal, $name:literal, $severity:ident, $summary:literal;)*) => {
        /// A stable diagnostic code (`CRM0101`, …). Every code names exactly one rule.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed, e.g. `"CRM0101"`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The rule's kebab-case name, e.g. `"unknown-stage"`.
            pub const fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The severity findings of this rule have.
            pub const fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// One line saying what the rule checks.
            pub const fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// The rule's documentation page (Markdown).
            pub const fn documentation(self) -> &'static str {
                match self {
                    $(Code::$variant => include_str!(concat!("../docs/rules/", $code, ".md")),)*
                }
            }
        }
    };
}

rules! {
    // Structure: the file is not well-formed JSON or does not match the schema.
    JsonSyntax = "CRM0001", "json-syntax", Error, "The file is not valid JSON.";
    DuplicateKey = "CRM0002", "duplicate-key", Error, "A JSON object has the same key twice.";
    WrongType = "CRM0003", "wrong-type", Error, "A value has the wrong JSON type.";
    MissingField = "CRM0004", "missing-field", Error, "A required key is missing.";
    UnknownKey = "CRM0005", "unknown-key", Error, "An object has a key the definition language does not know.";
    InvalidValue = "CRM0006", "invalid-value", Error, "A value is outside what the schema allows (enum, pattern, bounds).";
    TooDeep = "CRM0007", "too-deep", Error, "The JSON nests deeper than the compiler accepts.";

    // Names and references.
    UnknownStage = "CRM0101", "unknown-stage", Error, "A stage is referenced but not declared.";
    UnknownEntity = "CRM0102", "unknown-entity", Error, "An entity is referenced but not declared.";
    UnknownAction = "CRM0103", "unknown-action", Error, "An action is referenced but not declared.";
    UnknownField = "CRM0104", "unknown-field", Error, "A data field is written or configured but not declared in `dataSchema`.";
    DuplicateName = "CRM0105", "duplicate-name", Error, "Two things that must have distinct names share one.";
    ForeignStage = "CRM0106", "foreign-stage", Error, "A transition, gateway or entity setting names a stage of another entity.";
    AmbiguousEntity = "CRM0107", "ambiguous-entity", Error, "A transition's stages belong to several entities and it does not say which.";
    UnknownCalendar = "CRM0108", "unknown-calendar", Error, "An SLA names a calendar that `calendars` does not declare.";

    // The stage graph.
    UnreachableStage = "CRM0201", "unreachable-stage", Warning, "A stage cannot be reached from the initial stage.";
    NoWayOut = "CRM0202", "no-way-out", Error, "A stage that is not terminal has no outgoing transition.";
    AmbiguousTransitions = "CRM0203", "ambiguous-transitions", Warning, "Two automatic transitions leave the same stage and their conditions can both hold.";
    BranchCannotJoin = "CRM0204", "branch-cannot-join", Error, "A gateway branch can never reach its join.";
    TerminalHasExit = "CRM0205", "terminal-has-exit", Warning, "A stage declared terminal has outgoing transitions.";
    ParallelBranchCondition = "CRM0206", "parallel-branch-condition", Warning, "A branch of a parallel gateway has a condition, which parallel gateways ignore.";
    EmptyEntity = "CRM0207", "empty-entity", Error, "An entity declares no stages.";
    InvalidNumberPattern = "CRM0208", "invalid-number-pattern", Error, "An entity's `number` pattern has an unknown token, no counter or more than one.";

    // Condition expressions.
    ExprSyntax = "CRM0301", "expression-syntax", Error, "A condition is not a valid expression.";
    ExprType = "CRM0302", "expression-type", Error, "A condition compares or combines values of incompatible types.";
    UndeclaredField = "CRM0303", "undeclared-field", Warning, "A condition reads a data field that `dataSchema` does not declare.";
    UnknownFunction = "CRM0304", "unknown-function", Error, "A condition calls a function that does not exist, or with the wrong number of arguments.";
    ExprLimit = "CRM0305", "expression-limit", Error, "A condition is longer than 4,096 characters or nests deeper than 64 levels.";
    AlwaysFalse = "CRM0306", "always-false", Warning, "A condition can never hold given the field constraints in `dataSchema`.";
    NotBoolean = "CRM0307", "not-boolean", Error, "A condition does not produce a boolean.";

    // Timers, SLAs, escalations.
    InvalidDuration = "CRM0401", "invalid-duration", Error, "A duration cannot be parsed (expected e.g. \"2 days\", \"4 hours\").";
    ReminderAfterBreach = "CRM0402", "reminder-after-breach", Warning, "A reminder is due before the clock it reminds about starts.";
    AtRiskNotBeforeBreach = "CRM0403", "at-risk-not-before-breach", Error, "An SLA's at-risk threshold is not earlier than its breach.";
    ReminderWithoutSla = "CRM0404", "reminder-without-sla", Error, "A reminder targets an SLA breach but no SLA applies.";

    // Approvals, assignment, delegation.
    QuorumTooLarge = "CRM0501", "quorum-too-large", Error, "An approval quorum is larger than the number of assignees, so it can never be met.";
    InvalidApproval = "CRM0502", "invalid-approval", Error, "An approval can never resolve (no assignees, quorum of zero, quorum without the quorum strategy).";
    DelegationTooDeep = "CRM0503", "delegation-too-deep", Error, "A delegation chain is deeper than 3 levels.";
    DelegationCycle = "CRM0504", "delegation-cycle", Error, "Delegations form a cycle.";
    InvalidDateRange = "CRM0505", "invalid-date-range", Error, "A date range is malformed or ends before it starts.";

    // Actions.
    CompensationCycle = "CRM0601", "compensation-cycle", Error, "Compensations form a cycle.";
    UnusedAction = "CRM0602", "unused-action", Warning, "An action is declared but nothing uses it.";

    // Compatibility of a new version with the live one (`crm check --against`).
    StageRemovedUnderInstances = "CRM0801", "stage-removed-under-instances", Error, "A stage (or entity) is removed or renamed while live instances are in it.";
    TransitionRemovedUnderApprovals = "CRM0802", "transition-removed-under-approvals", Error, "A transition is removed while approvals of it are pending.";
    DataNoLongerValid = "CRM0803", "data-no-longer-valid", Error, "A field is added as required or narrowed (type, enum, range, pattern) and live data no longer validates.";
    GatewayChangedUnderTokens = "CRM0804", "gateway-changed-under-tokens", Error, "A gateway, branch or branch stage is removed while tokens run in it.";
    FieldRemovedWithData = "CRM0805", "field-removed-with-data", Warning, "A field is removed while live instances hold values for it.";
    StageRemoved = "CRM0806", "stage-removed", Warning, "A stage of the live version is removed; instances in it would be stranded.";
}

impl Code {
    /// Looks a code up by its printed form or its rule name (case-insensitive).
    pub fn parse(text: &str) -> Option<Code> {
        let text = text.trim();
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str().eq_ignore_ascii_case(text) || code.name().eq_ignore_ascii_case(text))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        let mut codes: Vec<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut names: Vec<_> = Code::ALL.iter().map(|c| c.name()).collect();
        codes.sort_unstable();
        codes.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!(codes.len(), Code::ALL.len());
        assert_eq!(names.len(), Code::ALL.len());
    }

    #[test]
    fn every_rule_page_has_the_four_sections() {
        for code in Code::ALL {
            let page = code.documentation();
            assert!(page.starts_with(&format!("# {}: {}", code.as_str(), code.name())), "{code}: title");
            for section in ["## What it does", "## Why is this bad", "## Example", "## Use instead"] {
                assert!(page.contains(section), "{code}: missing `{section}`");
            }
        }
    }

    #[test]
    fn parse_accepts_code_or_name() {
        assert_eq!(Code::parse("crm0101"), Some(Code::UnknownStage));
        assert_eq!(Code::parse("unknown-stage"), Some(Code::UnknownStage));
        assert_eq!(Code::parse("CRM9999"), None);
    }
}
