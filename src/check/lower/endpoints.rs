//! What a transition or gateway moves between: which entity it belongs to and which stages it
//! leaves from.

use crate::check::lower::Cx;
use crate::check::lower::names::Names;
use crate::diagnostic::{Code, Diagnostic, Label, unknown_name_help};
use crate::ir::{EntityId, StageId};
use crate::syntax::model::StageRefs;

/// What a transition or gateway moves between, before its entity is known.
pub(super) struct Endpoints<'s> {
    /// `(stage name, pointer of the value)`.
    pub(super) stages: Vec<(&'s str, String)>,
    /// The pointer of the whole transition or gateway (for the key span).
    pub(super) pointer: String,
    /// `entity`, if declared.
    pub(super) entity: Option<&'s str>,
}

impl Cx<'_, '_> {
    /// Works out which entity a transition or gateway belongs to.
    pub(super) fn resolve_entity(
        &mut self,
        endpoints: &Endpoints<'_>,
        names: &Names<'_>,
        what: &str,
    ) -> Option<EntityId> {
        if let Some(entity) = endpoints.entity {
            return self.entity_ref(entity, &format!("{}/entity", endpoints.pointer), names);
        }
        let known: Vec<&(&str, String)> =
            endpoints.stages.iter().filter(|(name, _)| !names.stages.entities_of(name).is_empty()).collect();
        // Unknown stage names are reported against the resolved entity later.
        let mut candidates: Option<Vec<EntityId>> = None;
        for (name, _) in &known {
            let owners = names.stages.entities_of(name);
            candidates = Some(match candidates {
                None => owners,
                Some(c) => c.into_iter().filter(|e| owners.contains(e)).collect(),
            });
        }
        let Some(candidates) = candidates else {
            if self.some_entity_pruned() {
                return None;
            }
            // No stage is known anywhere: report each as unknown against all stages.
            for (name, pointer) in &endpoints.stages {
                let all: Vec<&str> = names.stages.by_name.keys().map(String::as_str).collect();
                let help = unknown_name_help(name, "stage", all.iter().copied());
                self.push(
                    Diagnostic::new(
                        Code::UnknownStage,
                        self.locate.value(pointer),
                        format!("unknown stage `{name}`"),
                    )
                    .with_label("no entity declares this stage")
                    .with_help_opt(help),
                );
            }
            return None;
        };
        match candidates.as_slice() {
            [one] => Some(*one),
            [] => {
                // The stages exist but in different entities: report the ones outside the entity
                // of the target (or of the first stage).
                let (anchor, anchor_pointer) =
                    endpoints.stages.last().map(|(n, p)| (*n, p.as_str())).unwrap_or_default();
                let anchor_entity = names.stages.entities_of(anchor).first().copied();
                if let Some(entity) = anchor_entity {
                    let first_new = self.out.len();
                    for (name, pointer) in &endpoints.stages {
                        self.stage_in_entity(name, entity, names, || pointer.clone(), "stage");
                    }
                    // Say which stage decided the entity, so the other side of the mismatch shows.
                    let entity_name =
                        names.entities.get_index(entity.index()).map_or("?", |(n, _)| n.as_str());
                    let anchor_span = self.locate.value(anchor_pointer);
                    for diagnostic in &mut self.out[first_new..] {
                        if diagnostic.code == Code::ForeignStage {
                            diagnostic.secondary.push(Label::new(
                                anchor_span,
                                format!("`{anchor}` is a stage of `{entity_name}`"),
                            ));
                        }
                    }
                }
                None
            }
            many => {
                let list = many
                    .iter()
                    .filter_map(|e| names.entities.get_index(e.index()).map(|(n, _)| format!("`{n}`")))
                    .collect::<Vec<_>>()
                    .join(" and ");
                self.push(
                    Diagnostic::new(
                        Code::AmbiguousEntity,
                        self.locate.key(&endpoints.pointer),
                        format!("{what}'s stages exist in several entities: {list}"),
                    )
                    .with_label("cannot tell which entity this belongs to")
                    .with_help("add `\"entity\": \"…\"` to say which"),
                );
                None
            }
        }
    }

    pub(super) fn resolve_from(
        &mut self,
        from: &StageRefs,
        entity: EntityId,
        names: &Names<'_>,
        pointer: &dyn Fn() -> String,
    ) -> (Vec<StageId>, bool) {
        match from {
            StageRefs::One(star) if star == "*" => (Vec::new(), true),
            StageRefs::One(name) => {
                let id = self.stage_in_entity(name, entity, names, pointer, "stage");
                if id.is_none() {
                    self.incomplete_entities.insert(entity);
                }
                (id.into_iter().collect(), false)
            }
            StageRefs::Many(list) if list.is_empty() => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.value(&pointer()),
                        "`from` lists no stage",
                    )
                    .with_label("empty list")
                    .with_help("name the stage(s) this leaves from, or `\"*\"` for every non-terminal stage"),
                );
                (Vec::new(), false)
            }
            StageRefs::Many(list) => {
                let mut ids = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for (i, name) in list.iter().enumerate() {
                    let at = || format!("{}/{i}", pointer());
                    let Some(id) = self.stage_in_entity(name, entity, names, at, "stage") else {
                        self.incomplete_entities.insert(entity);
                        continue;
                    };
                    if !seen.insert(id) {
                        self.push(
                            Diagnostic::new(
                                Code::DuplicateName,
                                self.locate.value(&at()),
                                format!("stage `{name}` is listed twice"),
                            )
                            .with_label("listed again here"),
                        );
                    } else {
                        ids.push(id);
                    }
                }
                (ids, false)
            }
        }
    }
}

pub(super) fn endpoint_stages<'s>(from: &'s StageRefs, at: &str) -> Vec<(&'s str, String)> {
    match from {
        StageRefs::One(star) if star == "*" => Vec::new(),
        StageRefs::One(name) => vec![(name.as_str(), format!("{at}/from"))],
        StageRefs::Many(list) => {
            list.iter().enumerate().map(|(i, n)| (n.as_str(), format!("{at}/from/{i}"))).collect()
        }
    }
}
