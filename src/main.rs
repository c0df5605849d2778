//! The `connroute` binary: everything lives in [`connroute::cli`].

/// One-shot runs allocate from a bump arena (see `connroute::arena`).
#[global_allocator]
static ALLOCATOR: connroute::arena::Global = connroute::arena::Global;

fn main() -> std::process::ExitCode {
    connroute::cli::main()
}
