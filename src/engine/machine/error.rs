//! Why a command was refused. A refused command changes nothing: the caller's state is untouched.

use crate::engine::data::{PatternError, Violation};
use crate::engine::eval::EvalError;

use super::state::RunId;
use super::step::TimerKind;

/// A refused command, with the input that triggers each variant.
#[derive(Clone, Debug, PartialEq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum MachineError {
    /// `create_by_name` with an entity the definition does not declare, e.g. `"leed"`.
    #[error("unknown entity `{name}`")]
    #[diagnostic(code(crm::machine::unknown_entity))]
    UnknownEntity {
        /// The name asked for.
        name: String,
        /// A did-you-mean or the declared entities.
        #[help]
        help: Option<String>,
    },

    /// `fire_by_name` with a name that is neither a transition nor a gateway, e.g. `"qualfy"`.
    #[error("unknown transition `{name}`")]
    #[diagnostic(code(crm::machine::unknown_transition))]
    UnknownTransition {
        /// The name asked for.
        name: String,
        /// A did-you-mean or the declared transitions and gateways.
        #[help]
        help: Option<String>,
    },

    /// Firing a transition or gateway of another entity, e.g. `win_deal` (opportunity) on a lead.
    #[error("`{transition}` belongs to entity `{expected}`, not `{entity}`")]
    #[diagnostic(code(crm::machine::wrong_entity))]
    WrongEntity {
        /// The transition or gateway.
        transition: String,
        /// The instance's entity.
        entity: String,
        /// The entity it belongs to.
        expected: String,
    },

    /// Firing a transition or gateway whose `from` lists neither the instance's stage nor the stage
    /// of one of its active branches, e.g. `win_lead` on a lead still in `new`.
    #[error("`{transition}` cannot be fired from stage `{stage}`")]
    #[diagnostic(code(crm::machine::wrong_stage), help("it leaves from: {}", expected.join(", ")))]
    WrongStage {
        /// The transition or gateway.
        transition: String,
        /// The instance's stage.
        stage: String,
        /// The stages it leaves from.
        expected: Vec<String>,
    },

    /// Any command but reporting an action's outcome on an instance in a terminal stage.
    #[error("the instance is completed (stage `{stage}`)")]
    #[diagnostic(code(crm::machine::instance_completed))]
    InstanceCompleted {
        /// Its terminal stage.
        stage: String,
    },

    /// A guard does not pass, e.g. a `role_check` for `sales_manager` fired by a sales rep.
    #[error("refused by guard {guard}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    #[diagnostic(code(crm::machine::guard_refused))]
    GuardRefused {
        /// The guard: its expression, or `role_check(…)`, `permission_check(…)`, `custom(…)`.
        guard: String,
        /// The guard's `message`, if it has one.
        message: Option<String>,
    },

    /// A `custom` guard names an evaluator the host did not register, e.g. `sanctions_screening`.
    #[error("no guard evaluator named `{name}` is registered")]
    #[diagnostic(code(crm::machine::unknown_guard), help("register it with `Machine::with_guard`"))]
    UnknownGuard {
        /// The evaluator's name.
        name: String,
    },

    /// The transition's or gateway's `condition` does not hold, e.g. `data.lead_score > 50` at 30.
    #[error("the condition of `{transition}` does not hold: {condition}")]
    #[diagnostic(code(crm::machine::condition_false))]
    ConditionFalse {
        /// The transition or gateway.
        transition: String,
        /// The condition as written.
        condition: String,
    },

    /// A condition or guard failed at run time, e.g. `data.x > 50` when the undeclared `x` holds
    /// `'high'`: the command is refused, never treated as `false`.
    #[error("cannot evaluate `{expression}`: {source}")]
    #[diagnostic(code(crm::machine::evaluation))]
    Evaluation {
        /// The expression as written.
        expression: String,
        /// What went wrong.
        source: EvalError,
    },

    /// Data that breaks `dataSchema`, e.g. `{"lead_score": 120}` with `max: 100`; every problem listed.
    #[error("invalid data: {}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    #[diagnostic(code(crm::machine::invalid_data))]
    InvalidData {
        /// Every problem found.
        #[related]
        violations: Vec<Violation>,
    },

    /// Firing a transition with an approval while an approval is pending, e.g. `convert` twice.
    #[error("`{transition}` is waiting for approval")]
    #[diagnostic(code(crm::machine::approval_pending), help("approvers respond with `respond`"))]
    ApprovalPending {
        /// The transition waiting.
        transition: String,
    },

    /// Responding to a transition with no pending approval, e.g. before it was fired.
    #[error("`{transition}` has no pending approval")]
    #[diagnostic(code(crm::machine::no_pending_approval))]
    NoPendingApproval {
        /// The transition.
        transition: String,
    },

    /// A response from someone neither listed in `users` nor holding one of `roles`.
    #[error("`{approver}` may not respond to the approval of `{transition}`")]
    #[diagnostic(code(crm::machine::not_an_approver))]
    NotAnApprover {
        /// Who responded.
        approver: String,
        /// The transition.
        transition: String,
    },

    /// A second response from the same approver.
    #[error("`{approver}` has already responded")]
    #[diagnostic(code(crm::machine::already_responded))]
    AlreadyResponded {
        /// Who responded twice.
        approver: String,
    },

    /// A `custom` approval strategy the host did not register, e.g. `council_vote`.
    #[error("no approval strategy named `{name}` is registered")]
    #[diagnostic(code(crm::machine::unknown_strategy), help("register it with `Machine::with_strategy`"))]
    UnknownStrategy {
        /// The strategy's name.
        name: String,
    },

    /// A user assigning an instance to themselves (after following delegations) where the entity
    /// does not set `allow_self_assignment` (seed BR-001).
    #[error("`{user}` may not assign the instance to themselves")]
    #[diagnostic(code(crm::machine::self_assignment))]
    SelfAssignment {
        /// The user.
        user: String,
    },

    /// An assignee outside the entity's `assignment` candidates, e.g. `eve` when only the users
    /// `ana` and `bob` and the members of role `sales_rep` may be assigned.
    #[error("`{user}` is not a candidate for assignment: {candidates}")]
    #[diagnostic(
        code(crm::machine::not_a_candidate),
        help("assign one of the users or role members the entity's `assignment` lists")
    )]
    NotACandidate {
        /// The user asked for.
        user: String,
        /// The candidates, as a readable list.
        candidates: String,
    },

    /// Active delegations that lead back to a user already in the chain, e.g. `a → b → a`.
    #[error("delegation cycle: {}", chain.join(" → "))]
    #[diagnostic(code(crm::machine::delegation_cycle))]
    DelegationCycle {
        /// The users, the repeated one last.
        chain: Vec<String>,
    },

    /// Active delegations longer than `delegation.max_depth` (seed BR-005), e.g. `a → b → c → d → e`.
    #[error("delegation chain longer than {max_depth}: {}", chain.join(" → "))]
    #[diagnostic(code(crm::machine::delegation_too_deep))]
    DelegationTooDeep {
        /// The users followed, and the next one.
        chain: Vec<String>,
        /// The policy's limit.
        max_depth: u32,
    },

    /// An inclusive gateway none of whose branch conditions holds.
    #[error("no branch of gateway `{gateway}` applies")]
    #[diagnostic(code(crm::machine::no_branch_applies))]
    NoBranchApplies {
        /// The gateway.
        gateway: String,
    },

    /// Firing a gateway while a gateway's branches are still running.
    #[error("gateway `{gateway}` is still running")]
    #[diagnostic(code(crm::machine::gateway_running))]
    GatewayRunning {
        /// The running gateway.
        gateway: String,
    },

    /// `complete_branch` on a branch that is not running, e.g. twice, or one the inclusive gateway
    /// did not start.
    #[error("branch `{branch}` of gateway `{gateway}` is not running")]
    #[diagnostic(code(crm::machine::branch_not_active))]
    BranchNotActive {
        /// The gateway.
        gateway: String,
        /// The branch.
        branch: String,
    },

    /// `complete_branch` on a branch that completes by itself: through its `stage` or its `action`.
    #[error("branch `{branch}` of gateway `{gateway}` completes {how}, not by a user")]
    #[diagnostic(code(crm::machine::branch_not_manual))]
    BranchNotManual {
        /// The gateway.
        gateway: String,
        /// The branch.
        branch: String,
        /// `"by reaching the join"` or `"when its action succeeds"`.
        how: &'static str,
    },

    /// Reporting the outcome of an action run the state does not track, or already reported.
    #[error("action run {run} is not pending")]
    #[diagnostic(code(crm::machine::unknown_run))]
    UnknownRun {
        /// The run.
        run: RunId,
    },

    /// A timer that no longer applies (its stage was left, the instance completed); drop it.
    #[error("timer {timer:?} no longer applies")]
    #[diagnostic(code(crm::machine::stale_timer))]
    StaleTimer {
        /// The timer.
        timer: TimerKind,
    },

    /// Automatic transitions still applied after the bound, e.g. `a → b` and `b → a` both with
    /// conditions that stay true: the command is refused rather than loop.
    #[error("more than {limit} automatic steps in one command: {}", path.join(" → "))]
    #[diagnostic(
        code(crm::machine::auto_transition_limit),
        help("make the automatic transitions' conditions exclusive")
    )]
    AutoTransitionLimit {
        /// The bound.
        limit: usize,
        /// The last transitions and gateways taken.
        path: Vec<String>,
    },

    /// A field added at run time (or a hand-built definition) with a `pattern` that is not a
    /// regular expression, e.g. `"^(a"`.
    #[error("field `{field}` has an invalid pattern: {message}")]
    #[diagnostic(code(crm::machine::invalid_pattern))]
    InvalidPattern {
        /// The field.
        field: String,
        /// The regex compiler's message.
        message: String,
    },
}

impl From<PatternError> for MachineError {
    fn from(PatternError { field, message }: PatternError) -> Self {
        MachineError::InvalidPattern { field, message }
    }
}
