//! Helpers shared by the integration test binaries; each binary uses only some of them.
#![allow(dead_code)]

pub mod db;
