//! Stages and transitions as a Mermaid state diagram or a Graphviz digraph (`crm graph` and
//! `GET /v1/definitions/{id}/graph`).
//!
//! One subgraph per entity; initial and terminal stages marked; transitions labelled with their
//! name and, abbreviated, their condition; gateways drawn as a fork node and a join node with one
//! edge per branch. Node ids come from IR ids (`s3`, `g1_fork`), so any stage name is safe.

use std::fmt::Write;

use crate::ir::{Definition, EntityId, GatewayKind, StageId};

/// A Mermaid `stateDiagram-v2` of the definition, or of one entity.
pub fn mermaid(def: &Definition, only: Option<EntityId>) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    let nested = only.is_none();
    // `write!` into a `String` cannot fail, hence the ignored results.
    for cluster in clusters(def, only) {
        let indent = if nested { "    " } else { "  " };
        if nested {
            let _ = writeln!(out, "  state \"{}\" as e{} {{", mermaid_text(&cluster.name), cluster.id);
        }
        for node in &cluster.nodes {
            match node.kind {
                NodeKind::Stage { .. } => {
                    let _ = writeln!(out, "{indent}state \"{}\" as {}", mermaid_text(&node.label), node.id);
                }
                NodeKind::Fork(_) => {
                    let _ = writeln!(out, "{indent}state {} <<fork>>", node.id);
                }
                NodeKind::Join(_) => {
                    let _ = writeln!(out, "{indent}state {} <<join>>", node.id);
                }
            }
        }
        for node in &cluster.nodes {
            if let NodeKind::Stage { initial: true, .. } = node.kind {
                let _ = writeln!(out, "{indent}[*] --> {}", node.id);
            }
        }
        for edge in &cluster.edges {
            let _ = writeln!(out, "{indent}{} --> {} : {}", edge.from, edge.to, mermaid_text(&edge.label));
        }
        for node in &cluster.nodes {
            if let NodeKind::Stage { terminal: true, .. } = node.kind {
                let _ = writeln!(out, "{indent}{} --> [*]", node.id);
            }
        }
        if nested {
            out.push_str("  }\n");
        }
    }
    out
}

/// A Graphviz `digraph` of the definition, or of one entity.
pub fn dot(def: &Definition, only: Option<EntityId>) -> String {
    let mut out = format!("digraph {} {{\n", dot_string(&def.id));
    out.push_str("  rankdir=LR;\n  node [shape=box, style=rounded];\n  edge [fontsize=10];\n");
    for cluster in clusters(def, only) {
        let _ = writeln!(out, "  subgraph cluster_e{} {{", cluster.id);
        let _ = writeln!(out, "    label={};", dot_string(&cluster.name));
        for node in &cluster.nodes {
            let attributes = match node.kind {
                NodeKind::Stage { terminal, .. } => {
                    let mut attributes = format!("label={}", dot_string(&node.label));
                    if terminal {
                        attributes.push_str(", peripheries=2");
                    }
                    attributes
                }
                // BPMN's markers: `+` for parallel, `o` for inclusive gateways.
                NodeKind::Fork(kind) | NodeKind::Join(kind) => {
                    let marker = if kind == GatewayKind::Parallel { "+" } else { "o" };
                    format!(
                        "shape=diamond, style=\"\", label=\"{marker}\", xlabel={}",
                        dot_string(&node.label)
                    )
                }
            };
            let _ = writeln!(out, "    {} [{attributes}];", node.id);
        }
        for node in &cluster.nodes {
            if let NodeKind::Stage { initial: true, .. } = node.kind {
                let _ = writeln!(out, "    start_e{} [shape=point, label=\"\"];", cluster.id);
                let _ = writeln!(out, "    start_e{} -> {};", cluster.id, node.id);
            }
        }
        for edge in &cluster.edges {
            let _ = writeln!(out, "    {} -> {} [label={}];", edge.from, edge.to, dot_string(&edge.label));
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

struct Cluster {
    id: u32,
    name: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

struct Node {
    id: String,
    label: String,
    kind: NodeKind,
}

#[derive(Clone, Copy)]
enum NodeKind {
    Stage { initial: bool, terminal: bool },
    Fork(GatewayKind),
    Join(GatewayKind),
}

struct Edge {
    from: String,
    to: String,
    label: String,
}

/// The drawing, independent of the diagram language: per entity, its nodes and edges in IR order.
fn clusters(def: &Definition, only: Option<EntityId>) -> Vec<Cluster> {
    let stage = |id: StageId| format!("s{}", id.0);
    let mut clusters = Vec::new();
    for (index, entity) in def.entities.iter().enumerate() {
        let entity_id = EntityId(index as u32);
        if only.is_some_and(|only| only != entity_id) {
            continue;
        }
        let mut nodes: Vec<Node> = entity
            .stages
            .iter()
            .map(|&id| Node {
                id: stage(id),
                label: def.stage(id).name.clone(),
                kind: NodeKind::Stage { initial: id == entity.initial, terminal: def.stage(id).terminal },
            })
            .collect();
        let mut edges = Vec::new();
        for t in def.transitions.iter().filter(|t| t.entity == entity_id) {
            let label = with_condition(&t.name, t.condition.as_ref().map(|c| c.source.as_str()));
            for &from in &t.from {
                edges.push(Edge { from: stage(from), to: stage(t.to), label: label.clone() });
            }
        }
        for (g, gateway) in def.gateways.iter().enumerate().filter(|(_, g)| g.entity == entity_id) {
            let (fork, join) = (format!("g{g}_fork"), format!("g{g}_join"));
            let kind = match gateway.kind {
                GatewayKind::Parallel => "parallel",
                GatewayKind::Inclusive => "inclusive",
            };
            let name = format!("{} ({kind})", gateway.name);
            nodes.push(Node { id: fork.clone(), label: name.clone(), kind: NodeKind::Fork(gateway.kind) });
            nodes.push(Node { id: join.clone(), label: name, kind: NodeKind::Join(gateway.kind) });
            let label = with_condition(&gateway.name, gateway.condition.as_ref().map(|c| c.source.as_str()));
            for &from in &gateway.from {
                edges.push(Edge { from: stage(from), to: fork.clone(), label: label.clone() });
            }
            for branch in &gateway.branches {
                let label =
                    with_condition(&branch.name, branch.condition.as_ref().map(|c| c.source.as_str()));
                // A stage branch reaches the join stage through transitions; the others end at the join.
                let (to, label) = match (branch.stage, branch.action) {
                    (Some(s), _) => (stage(s), label),
                    (None, Some(action)) => (join.clone(), format!("{label} / {}", def.action(action).name)),
                    (None, None) => (join.clone(), format!("{label} (by a user)")),
                };
                edges.push(Edge { from: fork.clone(), to, label });
            }
            edges.push(Edge { from: join, to: stage(gateway.join), label: "join".to_owned() });
        }
        clusters.push(Cluster { id: entity_id.0, name: entity.name.clone(), nodes, edges });
    }
    clusters
}

/// `name [condition]`, the condition cut to a readable length.
fn with_condition(name: &str, condition: Option<&str>) -> String {
    const MAX: usize = 40;
    match condition {
        None => name.to_owned(),
        Some(condition) if condition.chars().count() <= MAX => format!("{name} [{condition}]"),
        Some(condition) => {
            let cut: String = condition.chars().take(MAX - 1).collect();
            format!("{name} [{}…]", cut.trim_end())
        }
    }
}

/// Text safe in a Mermaid label: entity codes for the characters its parser treats specially.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A quoted DOT string.
fn dot_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
