//! What the store keeps of a deployed definition.

use chrono::{DateTime, Utc};

/// What deploying a definition did: the version that holds the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployedVersion {
    /// The version that now holds the source.
    pub version: u64,
    /// False when the source was identical to the latest version, which is then reused.
    pub created: bool,
}

/// One deployed version of a definition (`crm_definitions`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRow {
    /// The definition's id.
    pub id: String,
    /// 1, 2, …: a new version per changed source.
    pub version: u64,
    /// The definition's display name.
    pub name: String,
    /// The definition JSON exactly as deployed.
    pub source: String,
    /// SHA-256 of `source`, lowercase hex.
    pub checksum: String,
    /// True for the latest version, the one new instances start on.
    pub active: bool,
    /// When this version was deployed.
    pub created_at: DateTime<Utc>,
}
