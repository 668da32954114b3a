//! Counting approval responses: the built-in strategies, custom ones, and who the assignees are.

use std::collections::{BTreeMap, HashMap};

use super::state::{ApprovalResponse, Vote};
use crate::ir;

/// Where an approval stands after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// More responses are needed.
    Pending,
    /// The transition goes ahead.
    Approved,
    /// The transition does not happen; the stage stays.
    Rejected,
}

/// A way of counting responses, registered by name for `"strategy": "custom"`.
///
/// `assignees` is the number of people asked (users, plus members of the roles, plus anyone who
/// responded through a role the directory did not list); `responses` are in the order given.
pub trait CustomStrategy: Send + Sync {
    /// Decides the approval.
    fn decide(&self, assignees: usize, responses: &[ApprovalResponse]) -> Decision;
}

impl<F> CustomStrategy for F
where
    F: Fn(usize, &[ApprovalResponse]) -> Decision + Send + Sync,
{
    fn decide(&self, assignees: usize, responses: &[ApprovalResponse]) -> Decision {
        self(assignees, responses)
    }
}

/// Who holds a role, asked when an approval lists `roles` (the host's user directory).
pub trait Directory {
    /// The user ids holding `role`.
    fn members(&self, role: &str) -> Vec<String>;
}

/// No directory: roles have no known members, so only users who respond count for them.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDirectory;

impl Directory for NoDirectory {
    fn members(&self, _role: &str) -> Vec<String> {
        Vec::new()
    }
}

impl Directory for HashMap<String, Vec<String>> {
    fn members(&self, role: &str) -> Vec<String> {
        self.get(role).cloned().unwrap_or_default()
    }
}

impl Directory for BTreeMap<String, Vec<String>> {
    fn members(&self, role: &str) -> Vec<String> {
        self.get(role).cloned().unwrap_or_default()
    }
}

/// The built-in strategies; `None` for `Custom`, which the caller looks up.
pub(crate) fn decide_builtin(
    strategy: &ir::ApprovalStrategy,
    assignees: usize,
    responses: &[ApprovalResponse],
) -> Option<Decision> {
    let approvals = responses.iter().filter(|r| r.vote == Vote::Approve).count();
    let rejections = responses.len() - approvals;
    let decide = |approved: bool, impossible: bool| match (approved, impossible) {
        (true, _) => Decision::Approved,
        (false, true) => Decision::Rejected,
        (false, false) => Decision::Pending,
    };
    Some(match strategy {
        ir::ApprovalStrategy::Unison => decide(rejections == 0 && approvals >= assignees, rejections > 0),
        // Approved by more than half; rejected once the others can no longer make a majority.
        ir::ApprovalStrategy::Majority => {
            decide(2 * approvals > assignees, 2 * assignees.saturating_sub(rejections) <= assignees)
        }
        ir::ApprovalStrategy::Quorum(n) => {
            let n = *n as usize;
            decide(approvals >= n, assignees.saturating_sub(rejections) < n)
        }
        ir::ApprovalStrategy::First => match responses.first() {
            Some(r) if r.vote == Vote::Approve => Decision::Approved,
            Some(_) => Decision::Rejected,
            None => Decision::Pending,
        },
        ir::ApprovalStrategy::Custom(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn responses(votes: &str) -> Vec<ApprovalResponse> {
        votes
            .chars()
            .enumerate()
            .map(|(i, c)| ApprovalResponse {
                approver: format!("u{i}"),
                vote: if c == 'y' { Vote::Approve } else { Vote::Reject },
                at: DateTime::UNIX_EPOCH,
            })
            .collect()
    }

    fn decide(strategy: ir::ApprovalStrategy, assignees: usize, votes: &str) -> Option<Decision> {
        decide_builtin(&strategy, assignees, &responses(votes))
    }

    #[test]
    fn majority_needs_more_than_half_and_rejects_once_impossible() {
        use Decision::*;
        let m = || ir::ApprovalStrategy::Majority;
        assert_eq!(decide(m(), 5, "yy"), Some(Pending));
        assert_eq!(decide(m(), 5, "yyy"), Some(Approved));
        assert_eq!(decide(m(), 5, "nn"), Some(Pending));
        assert_eq!(decide(m(), 5, "nnn"), Some(Rejected));
        // 4 assignees: 2 approvals are not a majority; 2 rejections make one impossible.
        assert_eq!(decide(m(), 4, "yy"), Some(Pending));
        assert_eq!(decide(m(), 4, "nn"), Some(Rejected));
    }

    #[test]
    fn quorum_unison_first() {
        use Decision::*;
        assert_eq!(decide(ir::ApprovalStrategy::Quorum(3), 5, "yny"), Some(Pending));
        assert_eq!(decide(ir::ApprovalStrategy::Quorum(3), 5, "ynyy"), Some(Approved));
        assert_eq!(decide(ir::ApprovalStrategy::Quorum(3), 5, "nnn"), Some(Rejected));
        assert_eq!(decide(ir::ApprovalStrategy::Unison, 2, "y"), Some(Pending));
        assert_eq!(decide(ir::ApprovalStrategy::Unison, 2, "yy"), Some(Approved));
        assert_eq!(decide(ir::ApprovalStrategy::Unison, 2, "n"), Some(Rejected));
        assert_eq!(decide(ir::ApprovalStrategy::First, 3, "n"), Some(Rejected));
        assert_eq!(decide(ir::ApprovalStrategy::Custom("x".into()), 3, "n"), None);
    }
}
