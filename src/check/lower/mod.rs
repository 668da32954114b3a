//! Lowering: the deserialised model to the IR, resolving every name and reporting what does not
//! resolve. Graph-level rules (reachability, joins, ambiguity) run afterwards on the IR, in
//! [`super::graph`].
//!
//! [`lower`] runs the steps in a fixed order, the order their findings are produced in; each
//! step lives in the submodule named for the part of the definition it reads.

mod actions;
mod approval;
mod calendars;
mod conditions;
mod data;
mod delegation;
mod endpoints;
mod entities;
mod gateways;
mod integrations;
mod names;
mod number;
mod recipients;
mod sla;
mod transitions;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::check::locate::Locator;
use crate::check::lower::integrations::integrations;
use crate::check::lower::names::Names;
use crate::check::structure::ANY_ENTRY;
use crate::diagnostic::Diagnostic;
use crate::ir::{self, ActionId, EntityId, StageId};
use crate::syntax::model::DefinitionFile;

/// The IR built so far plus the pointers needed to report on it later.
pub(crate) struct Lowered {
    /// The definition; only meaningful when no error was reported.
    pub definition: ir::Definition,
    /// Where each stage is declared (`/entities/lead/stages/2`).
    pub stage_pointers: Vec<String>,
    /// Stages reached by a `"*"` transition; they count as having a way out only once known to
    /// be non-terminal.
    pub wildcard_transitions: Vec<(ir::TransitionId, EntityId)>,
    /// Whether transitions or gateways were dropped as unreadable (graph findings would be noise).
    pub graph_incomplete: bool,
    /// Entities with an edge that lost a stage to an unresolved name: their reachability and
    /// ways out would only echo that error.
    pub incomplete_entities: HashSet<EntityId>,
    /// The stages each entity declared `terminal`, if it declared any.
    pub declared_terminal: Vec<Option<Vec<StageId>>>,
}

/// Lowers `file` to the IR, reporting unresolved names and invalid settings into `out`.
pub(crate) fn lower(
    file: &DefinitionFile,
    pruned: &Pruned<'_>,
    locate: &Locator<'_>,
    out: &mut Vec<Diagnostic>,
) -> Lowered {
    let mut cx = Cx {
        file,
        pruned,
        locate,
        out,
        stage_names_by_entity: Vec::new(),
        dropped_edges: false,
        incomplete_entities: HashSet::new(),
        calendars: HashMap::new(),
    };
    let data = cx.data_schema();
    cx.calendars = cx.calendars();
    let (entity_specs, mut stages, stage_index) = cx.entities_and_stages();
    let action_ids: HashMap<&str, ActionId> =
        file.actions.keys().enumerate().map(|(i, name)| (name.as_str(), ActionId(i as u32))).collect();
    let names = Names { actions: &action_ids, entities: &entity_specs.ids, stages: &stage_index };

    let actions = cx.actions(&names, &data);
    let transitions = cx.transitions(&names, &data);
    let gateways = cx.gateways(&names, &data);
    cx.check_duplicate_firing_names();
    cx.stage_slas(&mut stages, &names, &entity_specs.stage_pointers, &data);
    let (entities, declared_terminal) = cx.entities(&names, &data, &stages);
    let delegation = cx.delegation(&names);
    let integrations = integrations(file);
    let graph_incomplete = cx.dropped_edges
        || pruned.entries.iter().any(|(section, _)| section == "transitions" || section == "gateways");
    // Whatever was dropped for an error may have been what used an action: "unused" is only
    // worth saying about an otherwise valid definition.
    if !cx.out.iter().any(Diagnostic::is_error) {
        cx.unused_actions(&transitions, &gateways, &entities, &actions);
    }
    cx.integration_urls();

    for (id, transition) in transitions.transitions.iter().enumerate() {
        for &from in &transition.from {
            stages[from.index()].outgoing.push(ir::TransitionId(id as u32));
        }
    }
    for (id, gateway) in gateways.iter().enumerate() {
        for &from in &gateway.from {
            stages[from.index()].forks.push(ir::GatewayId(id as u32));
        }
    }
    let header = ir::DefinitionHeader {
        id: file.id.clone(),
        label: file.label.clone(),
        version: file.version.clone(),
    };
    Lowered {
        definition: ir::Definition::new(
            header,
            data,
            entities,
            stages,
            transitions.transitions,
            gateways,
            actions,
            delegation,
            integrations,
        ),
        stage_pointers: entity_specs.stage_pointers,
        wildcard_transitions: transitions.wildcards,
        graph_incomplete,
        incomplete_entities: cx.incomplete_entities,
        declared_terminal,
    }
}

/// What structure validation removed, so that lowering does not report it a second time.
pub(crate) struct Pruned<'p> {
    /// Named entries removed whole, as `(section, name)`.
    pub entries: &'p HashSet<(String, String)>,
    /// Every removed pointer.
    pub pointers: &'p HashSet<String>,
}

/// What every lowering step reads and writes; each submodule adds its steps as methods.
struct Cx<'a, 'o> {
    file: &'a DefinitionFile,
    pruned: &'a Pruned<'a>,
    locate: &'a Locator<'a>,
    out: &'o mut Vec<Diagnostic>,
    /// Stage names per entity, shared: every condition of the entity needs them.
    stage_names_by_entity: Vec<Rc<[String]>>,
    /// Whether a transition or gateway was left out of the IR because a name did not resolve.
    dropped_edges: bool,
    /// Entities whose transitions or gateways lost a stage because a name did not resolve.
    incomplete_entities: HashSet<EntityId>,
    /// The valid `calendars`, by name.
    calendars: HashMap<String, std::sync::Arc<ir::Calendar>>,
}

impl Cx<'_, '_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.out.push(diagnostic);
    }

    fn entity_stage_names(&self, entity: EntityId) -> Rc<[String]> {
        self.stage_names_by_entity.get(entity.index()).cloned().unwrap_or_else(|| Rc::from([]))
    }

    fn was_pruned(&self, section: &str, name: &str) -> bool {
        self.pruned.entries.contains(&(section.to_owned(), name.to_owned()))
            || self.pruned.entries.contains(&(section.to_owned(), ANY_ENTRY.to_owned()))
    }

    /// Whether some entity was dropped as unreadable: its stages are then unknown for a reason
    /// already reported.
    fn some_entity_pruned(&self) -> bool {
        self.pruned.entries.iter().any(|(section, _)| section == "entities")
    }

    /// Whether the value at `pointer` was removed as unreadable (and so already reported).
    fn pruned_at(&self, pointer: &str) -> bool {
        self.pruned.pointers.contains(pointer)
    }
}
