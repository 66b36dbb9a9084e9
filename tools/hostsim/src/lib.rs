//! A simulated Proxy-Wasm host: a plugin compiled natively (its `proxy_wasm` callbacks linked
//! into the same binary) runs requests through it, so the request path can be profiled with
//! symbols (`perf`, `valgrind --tool=callgrind`) and its host calls counted. The host keeps
//! headers, bodies, properties and shared data in memory; it answers what the plugins ask,
//! it does not emulate Envoy's behaviour beyond that.
//!
//! ```sh
//! cargo run --release -p hostsim --bin hostsim-proxy -- config.json [options]
//! ```
//!
//! Options: `--body FILE` (default: the bench's 1 KiB chat body), `--response FILE` (default:
//! a small OpenAI completion), `--model M` (the metadata `json_to_metadata` would set; default
//! the body's `gpt-4o`), `--no-metadata` (as without `json_to_metadata`), `--requests N`
//! (default 20000). Prints host calls per request by kind and native ns per request.

#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Default)]
struct Host {
    request_headers: Vec<(String, String)>,
    response_headers: Vec<(String, String)>,
    request_body: Vec<u8>,
    response_body: Vec<u8>,
    config: Vec<u8>,
    properties: HashMap<Vec<u8>, Vec<u8>>,
    shared: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    calls: BTreeMap<&'static str, u64>,
    metrics: u32,
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

fn with<T>(f: impl FnOnce(&mut Host) -> T) -> T {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

fn count(kind: &'static str) {
    with(|h| *h.calls.entry(kind).or_default() += 1);
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const CAS_MISMATCH: u32 = 8;

/// Hand `bytes` to the plugin the way the SDK frees them (`Vec::from_raw_parts(p, n, n)`).
unsafe fn give(bytes: &[u8], data: *mut *mut u8, size: *mut usize) {
    let boxed: Box<[u8]> = bytes.to_vec().into_boxed_slice();
    *size = boxed.len();
    *data = Box::into_raw(boxed).cast::<u8>();
}

unsafe fn slice<'a>(p: *const u8, n: usize) -> &'a [u8] {
    if n == 0 || p.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(p, n)
    }
}

unsafe fn text(p: *const u8, n: usize) -> String {
    String::from_utf8_lossy(slice(p, n)).into_owned()
}

fn headers(h: &mut Host, map: u32) -> Option<&mut Vec<(String, String)>> {
    match map {
        0 => Some(&mut h.request_headers),
        2 => Some(&mut h.response_headers),
        _ => None,
    }
}

fn pairs(list: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (list.len() as u32).to_le_bytes().to_vec();
    for (k, v) in list {
        out.extend((k.len() as u32).to_le_bytes());
        out.extend((v.len() as u32).to_le_bytes());
    }
    for (k, v) in list {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[no_mangle]
pub unsafe extern "C" fn proxy_log(_level: u32, _p: *const u8, _n: usize) -> u32 {
    count("log");
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_log_level(level: *mut u32) -> u32 {
    *level = 2;
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_current_time_nanoseconds(t: *mut u64) -> u32 {
    count("get_current_time");
    *t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_tick_period_milliseconds(_ms: u32) -> u32 {
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_buffer_bytes(
    kind: u32,
    start: usize,
    max: usize,
    data: *mut *mut u8,
    size: *mut usize,
) -> u32 {
    if kind != 7 {
        count("get_buffer_bytes");
    }
    with(|h| {
        let buf = match kind {
            0 => &h.request_body,
            1 => &h.response_body,
            7 => &h.config,
            _ => return NOT_FOUND,
        };
        let end = start.saturating_add(max).min(buf.len());
        give(buf.get(start.min(end)..end).unwrap_or_default(), data, size);
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_buffer_bytes(
    kind: u32,
    start: usize,
    len: usize,
    p: *const u8,
    n: usize,
) -> u32 {
    count("set_buffer_bytes");
    let bytes = slice(p, n).to_vec();
    with(|h| {
        let buf = match kind {
            0 => &mut h.request_body,
            1 => &mut h.response_body,
            _ => return BAD_ARGUMENT,
        };
        let end = start.saturating_add(len).min(buf.len());
        buf.splice(start.min(end)..end, bytes);
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_header_map_pairs(
    map: u32,
    data: *mut *mut u8,
    size: *mut usize,
) -> u32 {
    count("get_header_map_pairs");
    with(|h| {
        let Some(m) = headers(h, map) else {
            return BAD_ARGUMENT;
        };
        let list: Vec<(&[u8], &[u8])> = m
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        give(&pairs(&list), data, size);
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_header_map_pairs(_map: u32, _p: *const u8, _n: usize) -> u32 {
    count("set_header_map_pairs");
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_header_map_value(
    map: u32,
    k: *const u8,
    kn: usize,
    data: *mut *mut u8,
    size: *mut usize,
) -> u32 {
    let key = text(k, kn);
    let found = with(|h| {
        headers(h, map).and_then(|m| m.iter().find(|(a, _)| *a == key).map(|(_, v)| v.clone()))
    });
    match found {
        Some(v) => {
            count("get_header (found)");
            give(v.as_bytes(), data, size);
            OK
        }
        None => {
            count("get_header (absent)");
            NOT_FOUND
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_remove_header_map_value(map: u32, k: *const u8, kn: usize) -> u32 {
    count("remove_header");
    let key = text(k, kn);
    with(|h| {
        if let Some(m) = headers(h, map) {
            m.retain(|(a, _)| *a != key);
        }
    });
    OK
}

/// Add a header, or replace every header of that name.
unsafe fn put_header(map: u32, k: *const u8, kn: usize, v: *const u8, vn: usize, replace: bool) {
    let (key, value) = (text(k, kn), text(v, vn));
    with(|h| {
        if let Some(m) = headers(h, map) {
            if replace {
                m.retain(|(a, _)| *a != key);
            }
            m.push((key, value));
        }
    });
}

#[no_mangle]
pub unsafe extern "C" fn proxy_replace_header_map_value(
    map: u32,
    k: *const u8,
    kn: usize,
    v: *const u8,
    vn: usize,
) -> u32 {
    count("replace_header");
    put_header(map, k, kn, v, vn, true);
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_add_header_map_value(
    map: u32,
    k: *const u8,
    kn: usize,
    v: *const u8,
    vn: usize,
) -> u32 {
    count("add_header");
    put_header(map, k, kn, v, vn, false);
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_property(
    p: *const u8,
    n: usize,
    data: *mut *mut u8,
    size: *mut usize,
) -> u32 {
    let path = slice(p, n).to_vec();
    match with(|h| h.properties.get(&path).cloned()) {
        Some(v) => {
            count("get_property (found)");
            give(&v, data, size);
            OK
        }
        None => {
            count("get_property (absent)");
            NOT_FOUND
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_property(
    _p: *const u8,
    _n: usize,
    _v: *const u8,
    _vn: usize,
) -> u32 {
    count("set_property");
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_shared_data(
    k: *const u8,
    kn: usize,
    data: *mut *mut u8,
    size: *mut usize,
    cas: *mut u32,
) -> u32 {
    let key = slice(k, kn).to_vec();
    match with(|h| h.shared.get(&key).cloned()) {
        Some((v, c)) => {
            count("get_shared_data (found)");
            give(&v, data, size);
            *cas = c;
            OK
        }
        None => {
            count("get_shared_data (absent)");
            NOT_FOUND
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_shared_data(
    k: *const u8,
    kn: usize,
    v: *const u8,
    vn: usize,
    cas: u32,
) -> u32 {
    count("set_shared_data");
    let (key, value) = (slice(k, kn).to_vec(), slice(v, vn).to_vec());
    with(|h| {
        let current = h.shared.get(&key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return CAS_MISMATCH;
        }
        h.shared
            .insert(key, (value, current.wrapping_add(1).max(1)));
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn proxy_register_shared_queue(
    _p: *const u8,
    _n: usize,
    id: *mut u32,
) -> u32 {
    *id = 1;
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_resolve_shared_queue(
    _vp: *const u8,
    _vn: usize,
    _p: *const u8,
    _n: usize,
    id: *mut u32,
) -> u32 {
    *id = 1;
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_dequeue_shared_queue(
    _id: u32,
    _data: *mut *mut u8,
    _size: *mut usize,
) -> u32 {
    NOT_FOUND
}

#[no_mangle]
pub unsafe extern "C" fn proxy_enqueue_shared_queue(_id: u32, _p: *const u8, _n: usize) -> u32 {
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_continue_stream(_kind: u32) -> u32 {
    count("continue_stream");
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_close_stream(_kind: u32) -> u32 {
    OK
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn proxy_send_local_response(
    _status: u32,
    _dp: *const u8,
    _dn: usize,
    _bp: *const u8,
    _bn: usize,
    _hp: *const u8,
    _hn: usize,
    _grpc: i32,
) -> u32 {
    count("send_local_response");
    OK
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn proxy_http_call(
    _up: *const u8,
    _un: usize,
    _hp: *const u8,
    _hn: usize,
    _bp: *const u8,
    _bn: usize,
    _tp: *const u8,
    _tn: usize,
    _timeout: u32,
    token: *mut u32,
) -> u32 {
    count("http_call");
    *token = 1;
    OK
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn proxy_grpc_call(
    _up: *const u8,
    _un: usize,
    _sp: *const u8,
    _sn: usize,
    _mp: *const u8,
    _mn: usize,
    _ip: *const u8,
    _in: usize,
    _dp: *const u8,
    _dn: usize,
    _timeout: u32,
    _id: *mut u32,
) -> u32 {
    BAD_ARGUMENT
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn proxy_grpc_stream(
    _up: *const u8,
    _un: usize,
    _sp: *const u8,
    _sn: usize,
    _mp: *const u8,
    _mn: usize,
    _ip: *const u8,
    _in: usize,
    _id: *mut u32,
) -> u32 {
    BAD_ARGUMENT
}

#[no_mangle]
pub unsafe extern "C" fn proxy_grpc_send(_t: u32, _p: *const u8, _n: usize, _end: bool) -> u32 {
    BAD_ARGUMENT
}

#[no_mangle]
pub unsafe extern "C" fn proxy_grpc_cancel(_t: u32) -> u32 {
    BAD_ARGUMENT
}

#[no_mangle]
pub unsafe extern "C" fn proxy_grpc_close(_t: u32) -> u32 {
    BAD_ARGUMENT
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_status(
    code: *mut u32,
    _data: *mut *mut u8,
    _size: *mut usize,
) -> u32 {
    *code = 0;
    NOT_FOUND
}

#[no_mangle]
pub unsafe extern "C" fn proxy_set_effective_context(_c: u32) -> u32 {
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_call_foreign_function(
    _fp: *const u8,
    _fn: usize,
    _ap: *const u8,
    _an: usize,
    _data: *mut *mut u8,
    _size: *mut usize,
) -> u32 {
    count("call_foreign_function");
    NOT_FOUND
}

#[no_mangle]
pub unsafe extern "C" fn proxy_done() -> u32 {
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_define_metric(
    _kind: u32,
    _p: *const u8,
    _n: usize,
    id: *mut u32,
) -> u32 {
    count("define_metric");
    *id = with(|h| {
        h.metrics += 1;
        h.metrics
    });
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_get_metric(_id: u32, value: *mut u64) -> u32 {
    *value = 0;
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_record_metric(_id: u32, _v: u64) -> u32 {
    count("record_metric");
    OK
}

#[no_mangle]
pub unsafe extern "C" fn proxy_increment_metric(_id: u32, _v: i64) -> u32 {
    count("increment_metric");
    OK
}

// The plugin's side, exported by `proxy_wasm`'s dispatcher and the plugin's `main!`.
extern "C" {
    fn _initialize();
    fn proxy_on_vm_start(context: u32, size: usize) -> bool;
    fn proxy_on_configure(context: u32, size: usize) -> bool;
    fn proxy_on_context_create(context: u32, root: u32);
    fn proxy_on_request_headers(context: u32, headers: usize, end: bool) -> u32;
    fn proxy_on_request_body(context: u32, size: usize, end: bool) -> u32;
    fn proxy_on_response_headers(context: u32, headers: usize, end: bool) -> u32;
    fn proxy_on_response_body(context: u32, size: usize, end: bool) -> u32;
    fn proxy_on_log(context: u32);
    fn proxy_on_done(context: u32) -> bool;
    fn proxy_on_delete(context: u32);
}

/// The bench's 1 KiB chat body shape.
const DEFAULT_BODY: &str = r#"{"model":"gpt-4o","stream":false,"temperature":0.7,"max_tokens":512,"messages":[{"role":"system","content":"You are a concise assistant for a platform team. Answer in plain English."},{"role":"user","content":"What does an AI gateway do?"},{"role":"assistant","content":"It routes requests to model vendors, translates protocols and enforces quotas."},{"role":"user","content":"Explain how it picks a provider when several serve the same model."}]}"#;
const DEFAULT_RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1795329446,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"An AI gateway routes requests to model vendors.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":210,"completion_tokens":9,"total_tokens":219}}"#;

struct Args {
    config: Vec<u8>,
    body: Vec<u8>,
    response: Vec<u8>,
    model: Option<String>,
    metadata: bool,
    requests: u32,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let config = it.next().ok_or("usage: hostsim-<plugin> CONFIG.json [--body FILE] [--response FILE] [--model M] [--no-metadata] [--requests N]")?;
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let mut a = Args {
        config: read(&config)?,
        body: DEFAULT_BODY.as_bytes().to_vec(),
        response: DEFAULT_RESPONSE.as_bytes().to_vec(),
        model: None,
        metadata: true,
        requests: 20_000,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--body" => a.body = read(&value()?)?,
            "--response" => a.response = read(&value()?)?,
            "--model" => a.model = Some(value()?),
            "--no-metadata" => a.metadata = false,
            "--requests" => {
                a.requests = value()?.parse().map_err(|_| "--requests needs a number")?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

fn path(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// One request through every callback, with fresh headers and bodies.
fn request(a: &Args, context: u32) {
    with(|h| {
        h.request_headers = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "gateway"),
            (":scheme", "http"),
            ("content-type", "application/json"),
            ("authorization", "Bearer client-secret"),
            ("user-agent", "hostsim"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("content-length".to_string(), a.body.len().to_string())])
        .collect();
        h.request_body = a.body.clone();
        h.response_headers = vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), a.response.len().to_string()),
        ];
        h.response_body = a.response.clone();
    });
    let (n_req, n_resp) = with(|h| (h.request_headers.len(), h.response_headers.len()));
    // SAFETY: the plugin's exported callbacks, called in the order Envoy calls them.
    unsafe {
        proxy_on_context_create(context, 1);
        proxy_on_request_headers(context, n_req, false);
        proxy_on_request_body(context, a.body.len(), true);
        proxy_on_response_headers(context, n_resp, false);
        proxy_on_response_body(context, a.response.len(), true);
        proxy_on_log(context);
        proxy_on_done(context);
        proxy_on_delete(context);
    }
}

pub fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostsim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let a = args()?;
    let model = a.model.clone().or_else(|| body_model(&a.body));
    with(|h| {
        h.config = a.config.clone();
        if a.metadata {
            let mut facts: Vec<(&[u8], &[u8])> = vec![(b"stream", &[0])];
            if let Some(m) = &model {
                facts.push((b"model", m.as_bytes()));
            }
            h.properties.insert(
                path(&["metadata", "filter_metadata", "switchyard"]),
                pairs(&facts),
            );
        }
        h.properties.insert(
            path(&["response", "code_details"]),
            b"via_upstream".to_vec(),
        );
        h.properties
            .insert(path(&["response", "code"]), 200u64.to_le_bytes().to_vec());
    });
    // SAFETY: the plugin's start-up callbacks, as Envoy calls them.
    let configured = unsafe {
        _initialize();
        proxy_on_context_create(1, 0);
        proxy_on_vm_start(1, 0);
        proxy_on_configure(1, a.config.len())
    };
    if !configured {
        return Err("the plugin refused the configuration".into());
    }
    let mut context = 2;
    for _ in 0..1000 {
        request(&a, context);
        context += 1;
    }
    with(|h| h.calls.clear());
    request(&a, context);
    context += 1;
    let calls = with(|h| std::mem::take(&mut h.calls));
    let started = Instant::now();
    for _ in 0..a.requests {
        request(&a, context);
        context += 1;
    }
    let ns = started.elapsed().as_nanos() / u128::from(a.requests.max(1));
    let total: u64 = calls.values().sum();
    println!("host calls per request: {total}");
    for (kind, n) in &calls {
        println!("  {kind}: {n}");
    }
    println!("native time per request (plugin + simulated host): {ns} ns");
    Ok(())
}

/// The body's `model` (the first `"model":"…"`; good enough for the default metadata, pass
/// `--model` otherwise).
fn body_model(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let (_, rest) = text.split_once("\"model\":\"")?;
    rest.split_once('"').map(|(m, _)| m.to_string())
}
