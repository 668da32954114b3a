//! `crm`: the nexus-crm command line. Parses the arguments and hands them to [`nexus_crm::cli`].
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    nexus_crm::cli::run(nexus_crm::cli::Cli::parse())
}
