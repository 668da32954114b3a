//! Delegations and the dashboard query: what is pending for a user, sorted and paginated.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use super::InstanceRow;

/// A delegation (`crm_delegations`): `delegator`'s work also goes to `delegatee` between the dates.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRow {
    /// Delegation id.
    pub id: String,
    /// Who delegates.
    pub delegator: String,
    /// To whom.
    pub delegatee: String,
    /// First day (inclusive); `None` means already started.
    pub start_date: Option<NaiveDate>,
    /// Last day (inclusive); `None` means open-ended.
    pub end_date: Option<NaiveDate>,
    /// Only instances of this entity; `None` means all.
    pub entity: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// The deepest delegation chain the dashboard follows (seed BR-005): the depth for a definition
/// [`PendingQuery::delegation_depth`] does not list, and the limit of the store's recursive
/// query. A definition may ask for less (its `delegation.max_depth`), never for more.
pub const DELEGATION_DEPTH_BOUND: u32 = 3;

/// The sort key of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Last change.
    #[default]
    UpdatedAt,
    /// Creation.
    StartedAt,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// The dashboard query: which pending items, in which order, which page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PendingQuery {
    /// Only instances of this entity.
    pub entity: Option<String>,
    /// Only instances in this stage.
    pub stage: Option<String>,
    /// Only instances of this definition.
    pub definition: Option<String>,
    /// Sort key.
    pub sort: SortKey,
    /// Sort direction.
    pub direction: Direction,
    /// Page size (0 means 50; at most 500).
    pub limit: u32,
    /// The page after this cursor (from the previous [`Page::next`]).
    pub after: Option<Cursor>,
    /// "Today" for delegation date ranges; `None` means the current UTC date.
    pub today: Option<NaiveDate>,
    /// How many delegation hops the instances of a definition may be away from the user, by
    /// definition id; a definition not listed follows [`DELEGATION_DEPTH_BOUND`] hops. The
    /// engine fills it in from each definition's `delegation.max_depth`.
    pub delegation_depth: BTreeMap<String, u32>,
}

/// Why an item is on a user's dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingReason {
    /// Assigned to the user.
    Assigned,
    /// Assigned to `from`, who delegated (possibly through a chain) to the user.
    Delegated {
        /// The original assignee.
        from: String,
    },
    /// The user is asked to approve `transition` and has not responded.
    Approval {
        /// The transition awaiting approval.
        transition: String,
    },
}

/// One dashboard item.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingItem {
    /// The instance.
    pub instance: InstanceRow,
    /// Why it is pending for the user.
    pub reason: PendingReason,
}

/// One page of a keyset-paginated listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// An opaque position in a sorted listing: the sort key and id of the last item of a page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(pub(in crate::store) String);

impl Cursor {
    /// The cursor as text, to hand to a client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor a client handed back; checked when used.
    pub fn from_string(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
