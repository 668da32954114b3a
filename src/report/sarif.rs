//! SARIF 2.1.0 for code-scanning tools: one run of the `crm` tool with the rules its results use.
//!
//! Columns are Unicode code points (`columnKind: unicodeCodePoints`), as in every other output.
//! A relative path becomes a relative URI reference against `%SRCROOT%` (the directory `crm` ran
//! in), an absolute path a `file://` URI; both are percent-encoded, so a `:` or a space in a file
//! name cannot be read as a scheme or break the URI. Files that could not be read are recorded as
//! tool execution notifications, and the invocation as unsuccessful.

use std::fmt;

use serde::Serialize;

use super::{LineIndex, Report, write_json};
use crate::codes::Code;
use crate::diagnostic::Span;

/// A file the tool could not check (unreadable, too large): recorded in the SARIF invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolFailure {
    /// The path as given.
    pub path: String,
    /// Why it could not be checked.
    pub message: String,
}

/// Renders a SARIF 2.1.0 log of `reports`; the invocation is successful.
pub fn sarif(reports: &[Report], out: &mut impl fmt::Write) -> fmt::Result {
    sarif_run(reports, &[], out)
}

/// Renders a SARIF 2.1.0 log of `reports` and of the files that could not be checked.
pub fn sarif_run(reports: &[Report], failures: &[ToolFailure], out: &mut impl fmt::Write) -> fmt::Result {
    let mut codes: Vec<Code> = reports.iter().flat_map(|r| r.diagnostics.iter().map(|d| d.code)).collect();
    codes.sort_unstable();
    codes.dedup();
    let rules = codes
        .iter()
        .map(|code| Rule {
            id: code.as_str(),
            name: code.name(),
            short_description: Text { text: code.summary().to_owned() },
            help: Help { text: code.documentation(), markdown: code.documentation() },
            default_configuration: Configuration { level: code.severity().as_str() },
        })
        .collect();
    let mut results = Vec::new();
    for report in reports {
        let index = LineIndex::new(&report.source);
        let artifact = ArtifactLocation::for_path(&report.path);
        let location = |span: Span| {
            let (start, end) = index.range(span);
            PhysicalLocation {
                artifact_location: artifact.clone(),
                region: Region {
                    start_line: start.line,
                    start_column: start.column,
                    end_line: end.line,
                    end_column: end.column,
                },
            }
        };
        for d in &report.diagnostics {
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            results.push(Result {
                rule_id: d.code.as_str(),
                rule_index: codes.binary_search(&d.code).unwrap_or_default(),
                level: d.severity.as_str(),
                message: Text { text },
                locations: vec![Location { physical_location: location(d.primary.span), message: None }],
                related_locations: d
                    .secondary
                    .iter()
                    .map(|label| Location {
                        physical_location: location(label.span),
                        message: Some(Text { text: label.message.clone() }),
                    })
                    .collect(),
            });
        }
    }
    let notifications = failures
        .iter()
        .map(|failure| Notification {
            level: "error",
            message: Text { text: format!("cannot check `{}`: {}", failure.path, failure.message) },
            locations: vec![NotificationLocation {
                physical_location: ArtifactOnly {
                    artifact_location: ArtifactLocation::for_path(&failure.path),
                },
            }],
        })
        .collect();
    let log = Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool { driver: Driver { name: "crm", version: env!("CARGO_PKG_VERSION"), rules } },
            invocations: vec![Invocation {
                execution_successful: failures.is_empty(),
                tool_execution_notifications: notifications,
            }],
            column_kind: "unicodeCodePoints",
            results,
        }],
    };
    write_json(&log, out)
}

impl ArtifactLocation {
    /// A `file://` URI for an absolute path; a relative reference against `%SRCROOT%` otherwise.
    fn for_path(path: &str) -> Self {
        let slashed = path.replace('\\', "/");
        let drive = slashed.len() >= 3
            && slashed.as_bytes()[0].is_ascii_alphabetic()
            && slashed.as_bytes()[1] == b':'
            && slashed.as_bytes()[2] == b'/';
        if slashed.starts_with('/') {
            Self { uri: format!("file://{}", encode(&slashed)), uri_base_id: None }
        } else if drive {
            // `C:/x` is `file:///C:/x`; the drive's colon is part of the path, not a scheme.
            Self { uri: format!("file:///{}:{}", &slashed[..1], encode(&slashed[2..])), uri_base_id: None }
        } else {
            let relative = slashed.strip_prefix("./").unwrap_or(&slashed);
            Self { uri: encode(relative), uri_base_id: Some("%SRCROOT%") }
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `/` (UTF-8 bytes).
fn encode(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(byte as char)
            }
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri
}

// The subset of the SARIF 2.1.0 object model that `crm` emits.

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    invocations: Vec<Invocation>,
    column_kind: &'static str,
    results: Vec<Result>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    message: Text,
    locations: Vec<NotificationLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationLocation {
    physical_location: ArtifactOnly,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactOnly {
    artifact_location: ArtifactLocation,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
struct Driver {
    name: &'static str,
    version: &'static str,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: &'static str,
    name: &'static str,
    short_description: Text,
    help: Help,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Help {
    text: &'static str,
    markdown: &'static str,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Result {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<Location>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uris_that_cannot_be_misread() {
        let uri = |path: &str| {
            let location = ArtifactLocation::for_path(path);
            (location.uri, location.uri_base_id)
        };
        assert_eq!(uri("defs/a b:c.json"), ("defs/a%20b%3Ac.json".to_owned(), Some("%SRCROOT%")));
        assert_eq!(uri("./x.json"), ("x.json".to_owned(), Some("%SRCROOT%")));
        assert_eq!(uri("/tmp/ré.json"), ("file:///tmp/r%C3%A9.json".to_owned(), None));
        assert_eq!(uri("C:\\defs\\a.json"), ("file:///C:/defs/a.json".to_owned(), None));
    }
}
