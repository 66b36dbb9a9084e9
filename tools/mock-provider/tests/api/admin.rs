use mock_provider::Script;
use serde_json::{json, Value};

use crate::client::{get, post, post_raw, Conn, ReplyExt};
use crate::server;

fn chat() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn metrics_endpoint() {
    let s = server();
    s.set_metric("vllm:num_requests_running", 3.0);
    s.set_metric("vllm:num_requests_waiting{model_name=\"a\"}", 1.5);
    s.set_metric("vllm:num_requests_waiting{model_name=\"b\"}", 0.0);
    let r = get(s.addr(), "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    assert!(text.contains("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 3\n"));
    assert_eq!(
        text.matches("# TYPE vllm:num_requests_waiting gauge")
            .count(),
        1
    );
    assert!(text.contains("vllm:num_requests_waiting{model_name=\"a\"} 1.5\n"));
    assert!(text.contains("vllm:num_requests_waiting{model_name=\"b\"} 0\n"));
    s.set_metric("vllm:num_requests_running", 4.0);
    assert!(get(s.addr(), "/metrics")
        .text()
        .contains("vllm:num_requests_running 4\n"));
    assert!(s.requests().is_empty(), "/metrics is not recorded");
}

#[test]
fn admin_over_http() {
    let s = server();
    let a = s.addr();
    assert_eq!(get(a, "/health").status, 200);

    let r = post(
        a,
        "/__mock/script",
        &json!({"status": 418, "error_message": "teapot"}),
    );
    assert_eq!(r.status, 200);
    let r = post(a, "/v1/chat/completions", &chat());
    assert_eq!(r.status, 418);
    assert_eq!(r.json()["error"]["message"], "teapot");

    post(a, "/__mock/default", &json!({"reply_text": "always this"}));
    for _ in 0..2 {
        let v = post(a, "/v1/chat/completions", &chat()).json();
        assert_eq!(v["choices"][0]["message"]["content"], "always this");
    }

    post(
        a,
        "/__mock/metrics",
        &json!({"vllm:gpu_cache_usage_perc": 0.25, "up": 1}),
    );
    let text = get(a, "/metrics").text();
    assert!(text.contains("vllm:gpu_cache_usage_perc 0.25\n"));
    assert!(text.contains("up 1\n"));
    assert_eq!(
        post(a, "/__mock/metrics", &json!({"x": "high"})).status,
        400
    );

    let reqs = get(a, "/__mock/requests").json();
    let reqs = reqs.as_array().unwrap();
    assert_eq!(reqs.len(), 3, "admin requests are not recorded");
    assert_eq!(reqs[0]["method"], "POST");
    assert_eq!(reqs[0]["path"], "/v1/chat/completions");
    let body: Value = serde_json::from_str(reqs[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, chat());
    assert!(reqs[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == &json!(["content-type", "application/json"])));

    assert_eq!(
        post_raw(a, "/__mock/script", b"{\"status\": \"x\"}").status,
        400
    );
    assert_eq!(get(a, "/__mock/nothing").status, 404);

    assert_eq!(post(a, "/__mock/reset", &json!({})).status, 200);
    assert_eq!(get(a, "/__mock/requests").json(), json!([]));
    assert_eq!(get(a, "/metrics").text(), "");
    let v = post(a, "/v1/chat/completions", &chat()).json();
    assert_eq!(v["choices"][0]["message"]["content"], "Mock answer to: hi");

    let mut conn = Conn::connect(a);
    assert_eq!(
        conn.send("DELETE", "/__mock/requests", &[], b"").status,
        200
    );
    assert!(s.requests().is_empty());
}

#[test]
fn library_controls() {
    let s = server();
    s.push_script(Script::text("first"));
    s.push_script(Script::text("second"));
    let texts: Vec<Value> = (0..3)
        .map(|_| {
            post(s.addr(), "/v1/chat/completions", &chat()).json()["choices"][0]["message"]
                ["content"]
                .clone()
        })
        .collect();
    assert_eq!(
        texts,
        vec![json!("first"), json!("second"), json!("Mock answer to: hi")]
    );
    assert_eq!(s.requests().len(), 3);
    s.clear_requests();
    assert!(s.requests().is_empty());
    s.set_record_limit(2);
    for _ in 0..3 {
        post(s.addr(), "/v1/chat/completions", &chat());
    }
    assert_eq!(s.requests().len(), 2);
    let addr = s.addr();
    s.shutdown();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped listening"
    );
}

#[test]
fn cloud_credentials_over_http() {
    let s = crate::server();
    let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let path = "/model/m/converse";
    assert_eq!(crate::client::post_raw(s.addr(), path, body).status, 200);
    let r = crate::client::post(
        s.addr(),
        "/__mock/aws",
        &serde_json::json!({"access_key_id": "AKID", "secret_access_key": "s"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(crate::client::post_raw(s.addr(), path, body).status, 403);
    let r = crate::client::post(
        s.addr(),
        "/__mock/vertex",
        &serde_json::json!({"public_key_pem": "nope"}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        crate::client::post(s.addr(), "/__mock/reset", &serde_json::json!({})).status,
        200
    );
    assert_eq!(crate::client::post_raw(s.addr(), path, body).status, 200);
}
