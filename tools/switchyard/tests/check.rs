//! `switchyard check` on sample manifests (testdata/check/, one mistake each) and on
//! gateway.yaml files, through the library and through the binary's exit status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use switchyard::check::{check_gateway, check_manifests, Finding, Kind, Manifests};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/check")
        .join(name)
}

fn check_sample(name: &str) -> Vec<Finding> {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    check_manifests(&Manifests::parse(&text).unwrap(), None)
}

fn kinds(f: &[Finding]) -> Vec<Kind> {
    f.iter().map(|f| f.kind).collect()
}

#[test]
fn the_seed_setup_is_clean() {
    let f = check_sample("seed-ok.yaml");
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn provider_without_destination() {
    let f = check_sample("no-destination.yaml");
    assert_eq!(kinds(&f), [Kind::NoDestination], "{f:?}");
    assert!(f[0].message.contains("`qianwen`"), "{f:?}");
    assert!(f[0].at.contains("ai-load-balancer"), "{f:?}");
}

#[test]
fn destination_without_provider() {
    let f = check_sample("unknown-destination.yaml");
    // Both directions of the same typo.
    assert!(kinds(&f).contains(&Kind::UnknownDestination), "{f:?}");
    assert!(kinds(&f).contains(&Kind::NoDestination), "{f:?}");
    let u = f
        .iter()
        .find(|f| f.kind == Kind::UnknownDestination)
        .unwrap();
    assert!(u.message.contains("x-selected-provider == qwen"), "{u:?}");
    assert_eq!(u.at, "Ingress default/masgod");
}

#[test]
fn duplicates() {
    let f = check_sample("duplicate.yaml");
    assert_eq!(kinds(&f), [Kind::Duplicate, Kind::Duplicate], "{f:?}");
    assert!(f
        .iter()
        .any(|f| f.message.contains("provider name `minmax`")));
    assert!(f
        .iter()
        .any(|f| f.message.contains("default/masgod, default/minmax-direct")));
}

#[test]
fn unknown_vendor_type() {
    let f = check_sample("unknown-vendor.yaml");
    assert_eq!(kinds(&f), [Kind::UnknownVendor], "{f:?}");
    assert!(f[0].message.contains("`qwen-max`"));
}

#[test]
fn missing_tokens() {
    let f = check_sample("missing-token.yaml");
    assert_eq!(kinds(&f), [Kind::MissingToken, Kind::MissingToken], "{f:?}");
    assert!(f[0].message.contains("`minmax` has no apiTokens"));
    assert!(f[1].message.contains("DASHSCOPE_API_KEY"));
}

#[test]
fn plugin_bound_to_a_missing_ingress() {
    let f = check_sample("unbound.yaml");
    assert_eq!(kinds(&f), [Kind::Unbound], "{f:?}");
    assert!(f[0].message.contains("default/masgood"));
}

#[test]
fn balancer_and_proxy_disagree() {
    let f = check_sample("mismatch.yaml");
    assert_eq!(kinds(&f), [Kind::Mismatch], "{f:?}");
}

const GATEWAY: &str = "\
providers:
  - name: minmax
    type: minimax
    model: MiniMax-M2.1
    api_tokens: ['${MINIMAX_KEY}']
  - name: qianwen
    type: qwen
    model: qwen3-max-preview
    api_tokens: ['${QWEN_KEY}']
";

#[test]
fn gateway_problems_have_file_and_line() {
    let bad = GATEWAY.replace("type: qwen", "type: qwenn")
        + "  - {name: minmax, type: minimax, model: m}\n";
    let env = |_: &str| Some("k".to_string());
    let f = check_gateway("g.yaml", &bad, Some(&env), None);
    assert_eq!(kinds(&f), [Kind::UnknownVendor, Kind::Duplicate], "{f:?}");
    assert_eq!(f[0].at, "g.yaml:7");
    assert!(f[0]
        .message
        .starts_with("providers[1].type: unknown vendor type `qwenn`"));
    assert_eq!(f[1].at, "g.yaml:10");
    // Missing token variables.
    let env = |k: &str| (k == "MINIMAX_KEY").then(|| "k".to_string());
    let f = check_gateway("g.yaml", GATEWAY, Some(&env), None);
    assert_eq!(kinds(&f), [Kind::MissingToken], "{f:?}");
    assert_eq!(f[0].at, "g.yaml:9");
    assert!(f[0].message.contains("`QWEN_KEY`"));
}

#[test]
fn gateway_against_deployed_manifests() {
    let env = |_: &str| Some("k".to_string());
    let m = |name: &str| Manifests::parse(&std::fs::read_to_string(sample(name)).unwrap()).unwrap();
    assert!(check_gateway("g.yaml", GATEWAY, Some(&env), Some(&m("seed-ok.yaml"))).is_empty());
    // A provider added to gateway.yaml but not deployed.
    let more =
        GATEWAY.to_string() + "  - {name: kimi, type: moonshot, model: kimi-k2, api_tokens: [x]}\n";
    let f = check_gateway("g.yaml", &more, Some(&env), Some(&m("seed-ok.yaml")));
    assert!(
        f.iter().any(|f| f.kind == Kind::NoDestination
            && f.at == "g.yaml"
            && f.message.contains("`kimi`")),
        "{f:?}"
    );
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("MINIMAX_KEY", "k")
        .env("QWEN_KEY", "k")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn cli_exit_status() {
    let ok = sample("seed-ok.yaml");
    let (code, text) = run(&["check", "--higress", ok.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    for bad in [
        "no-destination.yaml",
        "unknown-destination.yaml",
        "duplicate.yaml",
        "unknown-vendor.yaml",
        "missing-token.yaml",
        "unbound.yaml",
        "mismatch.yaml",
    ] {
        let (code, text) = run(&["check", "--higress", sample(bad).to_str().unwrap()]);
        assert_eq!(code, 1, "{bad}: {text}");
        assert!(text.contains("problem(s)"), "{text}");
    }
    let dir = std::env::temp_dir().join(format!("switchyard-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = dir.join("gateway.yaml");
    std::fs::write(&g, GATEWAY).unwrap();
    let (code, text) = run(&[
        "check",
        "-c",
        g.to_str().unwrap(),
        "--higress",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    std::fs::write(&g, GATEWAY.replace("name: qianwen", "name: qwen")).unwrap();
    let (code, text) = run(&[
        "check",
        "-c",
        g.to_str().unwrap(),
        "--higress",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("`qwen`"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_render_writes_private_files() {
    let dir = std::env::temp_dir().join(format!("switchyard-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = dir.join("gateway.yaml");
    std::fs::write(&g, GATEWAY).unwrap();
    let out = dir.join("envoy.json");
    let (code, text) = run(&[
        "render",
        "envoy",
        "-c",
        g.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(v["static_resources"]["listeners"].is_array());
    // A missing secret refuses to render, naming the variable and the line.
    let status = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["render", "higress", "-c", g.to_str().unwrap()])
        .env_remove("QWEN_KEY")
        .env("MINIMAX_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(
        err.contains("gateway.yaml:9: providers[1].api_tokens") && err.contains("QWEN_KEY"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const CLOUD_GATEWAY: &str = "providers:
  - name: aws
    type: bedrock
    model: anthropic.claude-3-5-sonnet-20240620-v1:0
    options:
      awsRegion: us-east-1
      awsAccessKey: ${SY_TEST_AK}
      awsSecretKey: \"${SY_TEST_SK}\"
";

fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.args(args)
        .env_remove("SY_TEST_AK")
        .env_remove("SY_TEST_SK");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn option_variables_through_the_binary() {
    let dir = std::env::temp_dir().join(format!("switchyard-optvars-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = dir.join("gateway.yaml");
    std::fs::write(&g, CLOUD_GATEWAY).unwrap();
    let g = g.to_str().unwrap();
    const AK: &str = "AKIDOPTVARTEST";
    const SK: &str = "wJalrXUtnFEMI-optvar-secret";
    let both = [("SY_TEST_AK", AK), ("SY_TEST_SK", SK)];
    // Set: the rendered ai-proxy config carries the values.
    let (code, out, err) = cli(&["render", "envoy", "-c", g], &both);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(SK) && out.contains(AK) && !out.contains("${SY_TEST"),
        "{out}"
    );
    let (code, out, err) = cli(&["check", "-c", g], &both);
    assert_eq!(code, 0, "{out}{err}");
    // The secret missing: every command names file, line, option and variable, and prints
    // none of the values it has.
    let only_ak = [("SY_TEST_AK", AK)];
    let (code, out, err) = cli(&["render", "envoy", "-c", g], &only_ak);
    assert_eq!(code, 1);
    assert!(
        err.contains("gateway.yaml:8: providers[0].options.awsSecretKey: provider `aws`: environment variable `SY_TEST_SK` not set"),
        "{err}"
    );
    assert!(!out.contains(AK) && !err.contains(AK), "{out}{err}");
    let (code, out, err) = cli(&["render", "higress", "-c", g], &only_ak);
    assert_eq!(code, 1);
    assert!(err.contains("SY_TEST_SK") && !err.contains(AK) && !out.contains(AK));
    let (code, out, err) = cli(&["check", "-c", g], &only_ak);
    assert_eq!(code, 1);
    assert!(
        out.contains("gateway.yaml:8") && out.contains("`SY_TEST_SK`") && !out.contains(AK),
        "{out}{err}"
    );
    let (code, out, _) = cli(&["check", "-c", g, "--skip-env"], &[]);
    assert_eq!(code, 0, "{out}");
    // A malformed reference in a secret: the error shows none of it.
    let bad = CLOUD_GATEWAY.replace("${SY_TEST_SK}", &format!("{SK}${{"));
    let b = dir.join("bad.yaml");
    std::fs::write(&b, bad).unwrap();
    let (code, out, err) = cli(&["render", "envoy", "-c", b.to_str().unwrap()], &both);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.yaml:8: providers[0].options.awsSecretKey"),
        "{err}"
    );
    assert!(
        !err.contains("optvar-secret") && !out.contains("optvar-secret"),
        "{err}"
    );
    // --keep-token-refs keeps option references as text, and `check --higress` reports them.
    let m = dir.join("manifests.yaml");
    let (code, _, err) = cli(
        &[
            "render",
            "higress",
            "-c",
            g,
            "--keep-token-refs",
            "-o",
            m.to_str().unwrap(),
        ],
        &both,
    );
    assert_eq!(code, 0, "{err}");
    let manifests = std::fs::read_to_string(&m).unwrap();
    assert!(
        manifests.contains("${SY_TEST_SK}") && !manifests.contains(SK),
        "{manifests}"
    );
    let (code, out, _) = cli(&["check", "--higress", m.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("unresolved variable `SY_TEST_SK` in `awsSecretKey`"),
        "{out}"
    );
    // Without it they are resolved.
    let (code, out, err) = cli(&["render", "higress", "-c", g], &both);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(SK) && !out.contains("${SY_TEST"), "{out}");
    // A region kept as a reference leaves no upstream for the registries: refused.
    let r = dir.join("region.yaml");
    std::fs::write(&r, CLOUD_GATEWAY.replace("us-east-1", "${SY_TEST_REGION}")).unwrap();
    let (code, _, err) = cli(
        &[
            "render",
            "higress",
            "-c",
            r.to_str().unwrap(),
            "--keep-token-refs",
        ],
        &both,
    );
    assert_eq!(code, 1);
    assert!(err.contains("providers[0].options"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
