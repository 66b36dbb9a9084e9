//! ai-proxy against the in-memory host (see the `hostsim` library).

fn main() -> std::process::ExitCode {
    hostsim::main(hostsim::Filter::Proxy)
}
