//! `mock-provider --listen ADDR [--listen ADDR ...]`: serve mock LLM vendor APIs until Ctrl-C
//! or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mock_provider::{MockServer, DEFAULT_RECORD_LIMIT};

/// Mock LLM vendor server (OpenAI, Anthropic, Gemini, Bedrock, Vertex AI) for tests, demos and
/// benchmarks.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; repeat for several servers (each has its own scripts and records).
    #[arg(
        long = "listen",
        value_name = "ADDR",
        default_value = "127.0.0.1:18001"
    )]
    listen: Vec<SocketAddr>,
    /// Runtime worker threads per server (1 = single-threaded).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Requests each server keeps for `GET /__mock/requests` (0 = record nothing).
    #[arg(long, default_value_t = DEFAULT_RECORD_LIMIT)]
    record_limit: usize,
    /// Require SigV4 on Bedrock paths, signed with this access key id (and
    /// `--aws-secret-access-key`).
    #[arg(long, requires = "aws_secret_access_key")]
    aws_access_key_id: Option<String>,
    /// The secret of `--aws-access-key-id`.
    #[arg(long, requires = "aws_access_key_id")]
    aws_secret_access_key: Option<String>,
    /// Issue Vertex AI tokens at `POST /token` for JWTs signed by the private half of this
    /// public key (PEM file), and require them on `/v1/projects/...` paths.
    #[arg(long, value_name = "PEM_FILE")]
    vertex_public_key: Option<std::path::PathBuf>,
    /// Lifetime of the Vertex AI tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    vertex_token_lifetime: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let vertex_key = match &args.vertex_public_key {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("mock-provider: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut servers = Vec::with_capacity(args.listen.len());
    for addr in &args.listen {
        match MockServer::start_with_threads(*addr, args.threads) {
            Ok(server) => {
                server.set_record_limit(args.record_limit);
                if let (Some(id), Some(secret)) =
                    (&args.aws_access_key_id, &args.aws_secret_access_key)
                {
                    server.add_aws_credentials(id, secret);
                }
                if let Some(pem) = &vertex_key {
                    let lifetime = std::time::Duration::from_secs(args.vertex_token_lifetime);
                    if let Err(e) = server.set_vertex_auth(pem, lifetime) {
                        eprintln!("mock-provider: --vertex-public-key: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                println!("mock-provider listening on {}", server.addr());
                servers.push(server);
            }
            Err(e) => {
                eprintln!("mock-provider: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = std::io::stdout().flush();
    if let Err(e) = wait_for_shutdown_signal() {
        eprintln!("mock-provider: cannot wait for signals: {e}");
        return ExitCode::FAILURE;
    }
    for server in servers {
        server.shutdown();
    }
    ExitCode::SUCCESS
}

/// Block until Ctrl-C or (on Unix) SIGTERM.
fn wait_for_shutdown_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}
