//! What only the `poolrank` command line needs beside the library: the built-in demo, the
//! `bench` command and the progress bars it draws.

pub mod bench;
pub mod demo;
pub mod progress;
