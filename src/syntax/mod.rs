//! Syntax: source text to owned trees with byte spans. pest `Pairs` never leave this module.

pub mod duration;
pub mod expr;
pub mod json;
pub mod model;
