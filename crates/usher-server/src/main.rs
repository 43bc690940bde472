//! The `usher` binary: parses the command line and runs the command ([`usher_server::cli`]).

use std::process::ExitCode;

use clap::Parser as _;
use usher_server::cli::{self, Cli};

/// mimalloc rather than glibc's malloc: the hot paths allocate small, short-lived objects on two or more
/// threads, where glibc's arenas and `malloc_consolidate` cost ~19 % of a saturated heartbeat (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usher: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
