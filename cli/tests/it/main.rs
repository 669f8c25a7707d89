//! The integration tests, one binary: a module per area.

mod common;

mod backend_cli;
mod cli;
mod diagnose;
mod featurize;
mod featurize_golden;
mod featurize_stress;
mod gpu;
mod io;
mod objectives;
mod prune;
mod scoring;
mod select;
mod shard;
mod simulate;
mod sparse;
