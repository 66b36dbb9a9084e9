//! [`MockServer`]: a listener and a tokio runtime on a background thread.
//!
//! Measuring throughput by hand (release build):
//!
//! ```text
//! cargo build --release -p mock-provider
//! target/release/mock-provider --listen 127.0.0.1:18001 --record-limit 0 &
//! wrk -t1 -c32 -d10s -s post.lua http://127.0.0.1:18001/v1/chat/completions
//! ```
//!
//! with `post.lua` setting `wrk.method = "POST"` and a small chat body.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

use crate::record::RecordedRequest;
use crate::router;
use crate::script::Script;
use crate::state::Shared;

/// How many requests a server keeps by default; older ones are dropped first.
pub const DEFAULT_RECORD_LIMIT: usize = 10_000;

/// A running mock vendor server. It owns a background thread with its own tokio runtime, so it
/// works from sync and async tests alike; dropping it (or [`MockServer::shutdown`]) stops it.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Start on `addr` (port 0 picks a free port) with a single-threaded runtime. Returns once
    /// the socket is listening.
    pub fn start(addr: SocketAddr) -> io::Result<MockServer> {
        MockServer::start_with_threads(addr, 1)
    }

    /// Start like [`MockServer::start`] with `threads` runtime worker threads (1 = a
    /// current-thread runtime; more helps benchmarks on several cores).
    pub fn start_with_threads(addr: SocketAddr, threads: usize) -> io::Result<MockServer> {
        let runtime = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("mock-provider-worker")
                .enable_all()
                .build()?
        };
        let listener = {
            let _entered = runtime.enter();
            listen(addr)?
        };
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(DEFAULT_RECORD_LIMIT));
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("mock-provider {addr}"))
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    runtime.block_on(accept_loop(listener, shared, stopped));
                    // Dropping the runtime here ends the open connections' tasks.
                    drop(runtime);
                }
            })?;
        Ok(MockServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order (not admin requests, `/health`, `/metrics`).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Keep at most `limit` recorded requests (oldest dropped first); 0 turns recording off,
    /// which is what benchmarks want. Default: [`DEFAULT_RECORD_LIMIT`].
    pub fn set_record_limit(&self, limit: usize) {
        self.shared.set_record_limit(limit);
    }

    /// Queue a script for the next request (FIFO; each queued script answers one request).
    pub fn push_script(&self, s: Script) {
        self.shared.push_script(s);
    }

    /// The script used when the queue is empty (initially `Script::default()`).
    pub fn set_default_script(&self, s: Script) {
        self.shared.set_default_script(s);
    }

    /// Set a gauge served on `/metrics`, e.g. `set_metric("vllm:num_requests_running", 3.0)`;
    /// labels may be part of the name.
    pub fn set_metric(&self, name: &str, value: f64) {
        self.shared.set_gauge(name, value);
    }

    /// Require SigV4 on Bedrock paths and accept this key pair (several may be added).
    pub fn add_aws_credentials(&self, access_key_id: &str, secret_access_key: &str) {
        self.shared.with_clouds(|c| {
            c.aws.retain(|(k, _)| k != access_key_id);
            c.aws
                .push((access_key_id.to_owned(), secret_access_key.to_owned()));
        });
    }

    /// Accept this Bedrock API key as `Authorization: Bearer <key>` on Bedrock paths (which
    /// then require a valid key or SigV4 signature).
    pub fn add_bedrock_api_key(&self, key: &str) {
        self.shared
            .with_clouds(|c| c.bedrock_api_keys.push(key.to_owned()));
    }

    /// Issue Vertex AI tokens at `POST /token` for JWTs signed by the key whose public half
    /// is `public_key_pem` (SPKI PEM), valid for `token_lifetime`, and require them on every
    /// `/v1/projects/...` path. Replaces an earlier issuer (and its tokens).
    pub fn set_vertex_auth(
        &self,
        public_key_pem: &str,
        token_lifetime: Duration,
    ) -> Result<(), String> {
        let issuer = crate::vertex::Issuer::new(public_key_pem, token_lifetime.as_secs())?;
        self.shared.with_clouds(|c| c.vertex = Some(issuer));
        Ok(())
    }

    /// Make every Vertex AI token issued so far expired (tests of refreshing).
    pub fn expire_vertex_tokens(&self) {
        self.shared
            .with_clouds(|c| c.vertex.iter_mut().for_each(|v| v.expire_all()));
    }

    /// Forget requests, queued scripts, the default script, metrics and cloud credentials.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stop serving and wait for the background thread (also done on drop).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    // Small SSE pieces must leave as they are written.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(router::handle(shared, req).await) }
    });
    // No timer is set on purpose: hyper's header read timeout would also close idle keep-alive
    // connections after 30 s, racing a client (Envoy) that reuses them.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
