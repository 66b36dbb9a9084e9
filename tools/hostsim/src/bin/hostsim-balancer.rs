//! ai-load-balancer against the simulated host (see the `hostsim` library).
extern crate ai_load_balancer;

fn main() -> std::process::ExitCode {
    hostsim::main()
}
