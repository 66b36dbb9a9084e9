//! Table tests driven by the files under `testdata/vertex/` (layout in its README.md).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::anthropic::ClaudeOptions;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vertex")
}

#[test]
fn claude_requests() {
    let mut n = 0;
    for entry in fs::read_dir(dir().join("claude_request")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(case) = name.strip_suffix(".in.json") else {
            continue;
        };
        let input = fs::read(&path).unwrap();
        let want: Value = serde_json::from_slice(
            &fs::read(
                dir()
                    .join("claude_request")
                    .join(format!("{case}.out.json")),
            )
            .unwrap(),
        )
        .unwrap();
        let got = chat_request_to_vertex_claude(&input, &ClaudeOptions::default()).unwrap();
        let got: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(got, want, "{case}");
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn model_paths() {
    let table: Value =
        serde_json::from_slice(&fs::read(dir().join("model_paths.json")).unwrap()).unwrap();
    for c in table.as_array().unwrap() {
        let s = |k: &str| c[k].as_str().unwrap();
        let publisher = match s("publisher") {
            "google" => Publisher::Google,
            _ => Publisher::Anthropic,
        };
        assert_eq!(host(s("location")).unwrap(), s("host"));
        let got = model_path(
            s("project"),
            s("location"),
            publisher,
            s("model"),
            c["stream"].as_bool().unwrap(),
        );
        match c.get("path").and_then(Value::as_str) {
            Some(path) => assert_eq!(got.unwrap(), path),
            None => {
                let e = got.unwrap_err();
                assert_eq!((e.status(), e.param), (400, Some("model")), "{c}");
            }
        }
    }
}
