//! The `connroute` binary: everything lives in [`connroute::cli`].

fn main() -> std::process::ExitCode {
    connroute::cli::main()
}
