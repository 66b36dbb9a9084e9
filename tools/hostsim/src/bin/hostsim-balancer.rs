//! ai-load-balancer against the in-memory host (see the `hostsim` library).

fn main() -> std::process::ExitCode {
    hostsim::main(hostsim::Filter::Balancer)
}
