//! ai-proxy against the simulated host (see the `hostsim` library).
extern crate ai_proxy;

fn main() -> std::process::ExitCode {
    hostsim::main()
}
