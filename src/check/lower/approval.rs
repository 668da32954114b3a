//! A transition's `approval`: approvers, strategy and quorum.

use std::collections::HashSet;

use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir;
use crate::syntax::model;

impl Cx<'_, '_> {
    pub(super) fn approval(&mut self, spec: &model::ApprovalSpec, at: &str) -> Option<ir::Approval> {
        use model::StrategyName as S;
        if spec.users.is_empty() && spec.roles.is_empty() {
            self.push(
                Diagnostic::new(Code::InvalidApproval, self.locate.key(at), "approval has nobody to approve")
                    .with_label("no `users` and no `roles`")
                    .with_help("list the approvers in `users` or `roles`"),
            );
            return None;
        }
        let mut users_seen = HashSet::new();
        for (i, user) in spec.users.iter().enumerate() {
            // Approvers are user ids; a path or a role written here would be taken literally and
            // ask a user nobody is.
            let (what, help) = if user.starts_with("data.") {
                ("a data path", "approvers are user ids; approvers read from data are not supported")
            } else if user.starts_with("role:") {
                ("a role", "list the role under `roles` (without `role:`)")
            } else if user.trim().is_empty() {
                ("empty", "write a user id")
            } else {
                ("", "")
            };
            if !what.is_empty() {
                self.push(
                    Diagnostic::new(
                        Code::InvalidApproval,
                        self.locate.value(&format!("{at}/users/{i}")),
                        format!("approver `{user}` is not a user id"),
                    )
                    .with_label(format!("{what}, not a user id"))
                    .with_help(help),
                );
            }
            if !users_seen.insert(user) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        self.locate.value(&format!("{at}/users/{i}")),
                        format!("approver `{user}` is listed twice"),
                    )
                    .with_label("listed again here")
                    .with_help("each approver counts once"),
                );
            }
        }
        if spec.quorum.is_some() && spec.strategy != S::Quorum {
            self.push(
                Diagnostic::new(
                    Code::InvalidApproval,
                    self.locate.key(&format!("{at}/quorum")),
                    "`quorum` is set but the strategy is not `quorum`",
                )
                .with_label("ignored by this strategy")
                .with_secondary(self.locate.value(&format!("{at}/strategy")), "strategy chosen here")
                .with_help("use `\"strategy\": \"quorum\"`, or remove `quorum`"),
            );
        }
        if spec.custom.is_some() && spec.strategy != S::Custom {
            self.push(
                Diagnostic::new(
                    Code::InvalidApproval,
                    self.locate.key(&format!("{at}/custom")),
                    "`custom` is set but the strategy is not `custom`",
                )
                .with_label("ignored by this strategy")
                .with_help("use `\"strategy\": \"custom\"`, or remove `custom`"),
            );
        }
        let strategy = match spec.strategy {
            S::Unison => ir::ApprovalStrategy::Unison,
            S::Majority => ir::ApprovalStrategy::Majority,
            S::First => ir::ApprovalStrategy::First,
            S::Quorum => {
                let Some(quorum) = spec.quorum else {
                    if self.pruned_at(&format!("{at}/quorum")) {
                        return None;
                    }
                    self.push(
                        Diagnostic::new(
                            Code::InvalidApproval,
                            self.locate.value(&format!("{at}/strategy")),
                            "the quorum strategy needs `quorum`",
                        )
                        .with_label("how many approvals are needed?")
                        .with_help("add `\"quorum\": N`"),
                    );
                    return None;
                };
                if quorum == 0 {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidApproval,
                            self.locate.value(&format!("{at}/quorum")),
                            "a quorum of 0 approves without anyone approving",
                        )
                        .with_label("must be at least 1"),
                    );
                } else if spec.roles.is_empty() && quorum as usize > users_seen.len() {
                    self.push(
                        Diagnostic::new(
                            Code::QuorumTooLarge,
                            self.locate.value(&format!("{at}/quorum")),
                            format!("quorum of {quorum} can never be met by {} approvers", users_seen.len()),
                        )
                        .with_label(format!("needs {quorum} approvals"))
                        .with_secondary(
                            self.locate.value(&format!("{at}/users")),
                            format!("only {} approvers", users_seen.len()),
                        )
                        .with_help("lower the quorum, add approvers, or add a role"),
                    );
                }
                ir::ApprovalStrategy::Quorum(quorum)
            }
            S::Custom => match &spec.custom {
                Some(name) => ir::ApprovalStrategy::Custom(name.clone()),
                None if self.pruned_at(&format!("{at}/custom")) => return None,
                None => {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidApproval,
                            self.locate.value(&format!("{at}/strategy")),
                            "the custom strategy needs `custom`",
                        )
                        .with_label("which registered strategy?")
                        .with_help("add `\"custom\": \"NAME\"` naming a strategy registered with the engine"),
                    );
                    return None;
                }
            },
        };
        Some(ir::Approval { users: spec.users.clone(), roles: spec.roles.clone(), strategy })
    }
}
