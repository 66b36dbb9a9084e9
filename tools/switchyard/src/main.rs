//! `switchyard`: one gateway.yaml -> Envoy bootstrap or Higress manifests; checks; local runs.

use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchyard::check::{check_gateway, check_manifests, Manifests};
use switchyard::envoy::Runtime;
use switchyard::gateway::{process_env, Diagnostic, GatewayConfig, GatewayError, Upstreams};
use switchyard::higress::HigressOptions;
use switchyard::run::write_private;
use switchyard::up::UpOptions;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "AI gateway config for Envoy and Higress from one gateway.yaml"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render an Envoy bootstrap or Higress manifests.
    Render {
        #[command(subcommand)]
        target: RenderTarget,
    },
    /// Report problems in a gateway.yaml and/or Higress manifests (exit status 1 if any).
    Check {
        /// gateway.yaml to validate (token and option variables are looked up in the environment).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Higress manifests (multi-document YAML) to check, against the config when given.
        #[arg(long)]
        higress: Option<PathBuf>,
        /// Do not resolve token and option variables from the environment (e.g. in CI).
        #[arg(long)]
        skip_env: bool,
    },
    /// Run Envoy with the plugins; edits to gateway.yaml apply without a restart.
    Up {
        #[arg(short, long, default_value = "gateway.yaml")]
        config: PathBuf,
        /// Envoy binary (default: $ENVOY_BIN, .venv, PATH).
        #[arg(long)]
        envoy: Option<PathBuf>,
        #[command(flatten)]
        wasm: WasmDir,
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Where the bootstrap, xDS files and Envoy log go (default: target/up).
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Envoy worker threads.
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
    },
}

#[derive(Args)]
struct RuntimeArgs {
    /// Where the filters run: `native` (the dynamic module libswitchyard.so, no V8) or `wasm`
    /// (Proxy-Wasm plugins behind json_to_metadata).
    #[arg(long, default_value = "native", value_parser = parse_runtime)]
    runtime: Runtime,
    /// Directory with libswitchyard.so (default: $SWITCHYARD_NATIVE_DIR,
    /// $CARGO_TARGET_DIR/native, target/native). Envoy finds it through
    /// ENVOY_DYNAMIC_MODULES_SEARCH_PATH, which `up` sets.
    #[arg(long)]
    native_dir: Option<PathBuf>,
}

fn parse_runtime(s: &str) -> Result<Runtime, String> {
    Runtime::parse(s).ok_or_else(|| format!("unknown runtime {s:?}: native or wasm"))
}

#[derive(Args)]
struct WasmDir {
    /// Directory with ai_load_balancer.wasm and ai_proxy.wasm (default:
    /// $SWITCHYARD_WASM_DIR, $CARGO_TARGET_DIR/wasm, target/wasm).
    #[arg(long)]
    wasm_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RenderTarget {
    /// A complete Envoy bootstrap (JSON); secrets are resolved from the environment.
    Envoy {
        #[arg(short, long)]
        config: PathBuf,
        /// Output file, written mode 0600 (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        wasm: WasmDir,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Kubernetes YAML for Higress: McpBridge, Ingresses, WasmPlugins.
    Higress {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// URL of the balancer plugin (oci://… or file://…).
        #[arg(
            long,
            default_value = "file:///opt/plugins/ai_load_balancer_higress.wasm"
        )]
        balancer_url: String,
        /// URL of the ai-proxy plugin (oci://… or file://…).
        #[arg(long, default_value = "file:///opt/plugins/ai_proxy.wasm")]
        proxy_url: String,
        /// Keep `${VAR}` references in tokens and options as text (for a later substitution step).
        #[arg(long)]
        keep_token_refs: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Render { target } => render(target),
        Cmd::Check {
            config,
            higress,
            skip_env,
        } => return check(config.as_deref(), higress.as_deref(), skip_env),
        Cmd::Up {
            config,
            envoy,
            wasm,
            runtime,
            workdir,
            concurrency,
        } => up(config, envoy, wasm, runtime, workdir, concurrency),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The nearest ancestor of the working directory with a `.venv` or `Cargo.lock`.
fn project_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .find(|d| d.join(".venv").is_dir() || d.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

fn wasm_dir(w: WasmDir) -> PathBuf {
    if let Some(d) = w
        .wasm_dir
        .or_else(|| std::env::var_os("SWITCHYARD_WASM_DIR").map(PathBuf::from))
    {
        return d;
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if !t.is_empty() => PathBuf::from(t).join("wasm"),
        _ => project_root().join("target/wasm"),
    }
}

fn native_dir(r: &RuntimeArgs) -> PathBuf {
    if let Some(d) = r
        .native_dir
        .clone()
        .or_else(|| std::env::var_os("SWITCHYARD_NATIVE_DIR").map(PathBuf::from))
    {
        return d;
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if !t.is_empty() => PathBuf::from(t).join("native"),
        _ => project_root().join("target/native"),
    }
}

fn emit(output: Option<&Path>, text: &str) -> Result<(), String> {
    match output {
        Some(p) => write_private(p, text.as_bytes()).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn load(path: &Path) -> Result<GatewayConfig, String> {
    GatewayConfig::load(path).map_err(|e| e.to_string())
}

fn resolved(path: &Path, cfg: &GatewayConfig) -> Result<Upstreams, String> {
    Upstreams::configured(cfg, &process_env).map_err(|problems| {
        GatewayError {
            file: path.display().to_string(),
            problems,
        }
        .to_string()
    })
}

/// With `--keep-token-refs` the registries still need each upstream: an option that names
/// it (`awsRegion`, `vertexRegion`, `azureServiceUrl`, …) must not be a `${VAR}`.
fn kept_refs(path: &Path, cfg: &GatewayConfig) -> Result<(), String> {
    let problems: Vec<Diagnostic> = cfg
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.upstream_url()
                .and_then(|u| switchyard::gateway::endpoint_cluster("x", &u))
                .is_none()
        })
        .map(|(i, p)| {
            Diagnostic::new(
                p.line,
                format!("providers[{i}].options"),
                "with --keep-token-refs the options naming the upstream (region, URL, host) \
                 must be written out, not `${VAR}`",
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GatewayError {
            file: path.display().to_string(),
            problems,
        }
        .to_string())
    }
}

fn render(target: RenderTarget) -> Result<(), String> {
    match target {
        RenderTarget::Envoy {
            config,
            output,
            wasm,
            runtime,
        } => {
            let cfg = load(&config)?;
            let ups = resolved(&config, &cfg)?;
            let mut spec =
                switchyard::gateway::render(&cfg, &ups, &wasm_dir(wasm), cfg.admin_addr());
            spec.runtime = runtime.runtime;
            if runtime.runtime == Runtime::Native {
                eprintln!(
                    "switchyard: native runtime: start Envoy with ENVOY_DYNAMIC_MODULES_SEARCH_PATH={}",
                    native_dir(&runtime).display()
                );
            }
            let json = serde_json::to_string_pretty(&switchyard::envoy::render(&spec))
                .map_err(|e| e.to_string())?;
            emit(output.as_deref(), &format!("{json}\n"))
        }
        RenderTarget::Higress {
            config,
            output,
            balancer_url,
            proxy_url,
            keep_token_refs,
        } => {
            let cfg = load(&config)?;
            let (cfg, tokens) = if keep_token_refs {
                kept_refs(&config, &cfg)?;
                let tokens = cfg
                    .providers
                    .iter()
                    .map(|p| {
                        let t = p.api_tokens.iter().map(|t| t.value.clone()).collect();
                        (p.name.value.clone(), t)
                    })
                    .collect();
                (cfg, tokens)
            } else {
                let ups = resolved(&config, &cfg)?;
                (ups.apply(&cfg), ups.tokens())
            };
            let opts = HigressOptions {
                balancer_url,
                proxy_url,
            };
            let docs = switchyard::higress::render(&cfg, &tokens, &opts);
            let yaml = switchyard::higress::to_yaml(&docs).map_err(|e| e.to_string())?;
            emit(output.as_deref(), &yaml)
        }
    }
}

fn check(config: Option<&Path>, higress: Option<&Path>, skip_env: bool) -> ExitCode {
    let env: Option<switchyard::gateway::EnvLookup> =
        if skip_env { None } else { Some(&process_env) };
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let manifests = match higress.map(|p| {
        read(p).and_then(|t| Manifests::parse(&t).map_err(|e| format!("{}: {e}", p.display())))
    }) {
        Some(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Some(Ok(m)) => Some(m),
        None => None,
    };
    let findings = match (config, &manifests) {
        (Some(c), m) => match read(c) {
            Ok(text) => check_gateway(&c.display().to_string(), &text, env, m.as_ref()),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(m)) => check_manifests(m, None),
        (None, None) => {
            eprintln!("check: give -c gateway.yaml and/or --higress manifests.yaml");
            return ExitCode::from(2);
        }
    };
    for f in &findings {
        println!("{f}");
    }
    if findings.is_empty() {
        println!("ok: no problems found");
        ExitCode::SUCCESS
    } else {
        println!("{} problem(s)", findings.len());
        ExitCode::FAILURE
    }
}

fn up(
    config: PathBuf,
    envoy: Option<PathBuf>,
    wasm: WasmDir,
    runtime: RuntimeArgs,
    workdir: Option<PathBuf>,
    concurrency: u32,
) -> Result<(), String> {
    let root = project_root();
    let envoy = envoy
        .or_else(|| switchyard::run::find_envoy(&root))
        .ok_or("envoy not found: pass --envoy, set ENVOY_BIN, or run `cargo xtask setup`")?;
    let mut opts = UpOptions::new(
        config,
        envoy,
        wasm_dir(wasm),
        workdir.unwrap_or_else(|| root.join("target/up")),
    );
    opts.concurrency = concurrency;
    opts.runtime = runtime.runtime;
    opts.native_dir = native_dir(&runtime);
    switchyard::up::run_foreground(opts, switchyard::up::stop_on_signals())
}
