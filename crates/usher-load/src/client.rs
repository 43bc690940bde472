//! A lean HTTP/1.1 client on hyper 1: a fixed set of keep-alive connections ("lanes").
//!
//! A simulated viewer sends on its own lane (one connection per viewer when there are as many lanes as
//! viewers, as browsers do) or shares one with others when the file-descriptor budget is smaller. Each
//! lane carries one request at a time, so the latency measured — from the moment the lane is ours to the
//! last byte of the answer — is the server's and the network's, never the client's own queueing. A lane
//! whose connection was closed while idle reconnects silently (counted); a failure during a request drops
//! the connection and is reported by kind.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The TCP connection could not be made.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// No complete answer within the request timeout.
    #[error("timeout")]
    Timeout,
    /// The connection failed during the request.
    #[error("transport: {0}")]
    Transport(hyper::Error),
}

impl Failure {
    /// A short, stable label for error tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Timeout => "timeout",
            Failure::Transport(_) => "transport",
        }
    }
}

/// An HTTP answer and how long it took.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
    /// From sending the request (connection in hand) to the last byte of the body.
    pub latency: Duration,
    /// Its `Retry-After` in seconds, when it carries one as a number.
    pub retry_after_s: Option<u64>,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// Method.
    pub method: Method,
    /// Path and query (origin form).
    pub path: &'a str,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body (empty for none).
    pub body: Bytes,
}

impl<'a> Call<'a> {
    /// A `GET path`.
    pub fn get(path: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A request with a JSON body.
    pub fn json(method: Method, path: &'a str, body: Vec<u8>) -> Self {
        Self {
            method,
            path,
            headers: vec![(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(body),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds `Authorization: Bearer key`.
    ///
    /// # Panics
    /// When `key` holds characters a header cannot carry.
    #[must_use]
    pub fn bearer(self, key: &str) -> Self {
        let value =
            HeaderValue::from_str(&format!("Bearer {key}")).expect("API key is header-safe");
        self.header(hyper::header::AUTHORIZATION, value)
    }
}

/// Where the server is: `http://host:port`, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    /// The base URL as given, without a trailing slash.
    pub base_url: String,
}

impl Target {
    /// Parses and resolves `http://host[:port]` (a path after it is ignored).
    ///
    /// # Errors
    /// When the URL is not plain `http://`, or the host does not resolve.
    pub async fn resolve(base_url: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = base_url
            .parse()
            .with_context(|| format!("`{base_url}` is not a URL"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "`{base_url}`: only http:// is supported (put the load tool next to the server, not behind TLS)"
        );
        let authority = uri.authority().context("URL without a host")?.clone();
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("resolving {}", authority.host()))?
            .next()
            .with_context(|| format!("{} has no address", authority.host()))?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(authority.as_str())?,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }
}

/// A fixed set of keep-alive HTTP/1.1 connections to one server.
pub struct Lanes {
    target: Target,
    lanes: Vec<Mutex<Option<SendRequest<Full<Bytes>>>>>,
    timeout: Duration,
    connects: AtomicU64,
}

impl Lanes {
    /// `n` lanes (at least one), each connecting on first use; `timeout` bounds each request, connecting
    /// included.
    pub fn new(target: Target, n: usize, timeout: Duration) -> Self {
        Self {
            target,
            lanes: (0..n.max(1)).map(|_| Mutex::new(None)).collect(),
            timeout,
            connects: AtomicU64::new(0),
        }
    }

    /// How many lanes.
    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    /// Never true (there is always at least one lane); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// TCP connections opened so far (first connections and reconnects).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let stream = TcpStream::connect(self.target.addr)
            .await
            .map_err(Failure::Connect)?;
        stream.set_nodelay(true).map_err(Failure::Connect)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(Failure::Transport)?;
        tokio::spawn(async move {
            // ends when the server or we close the connection; a failure shows up on the next request
            let _closed = conn.await;
        });
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    /// Sends `call` on lane `lane % len` and reads the whole answer.
    ///
    /// # Errors
    /// [`Failure`] when there is no complete HTTP answer.
    pub async fn send(&self, lane: usize, call: Call<'_>) -> Result<Reply, Failure> {
        let mut slot = self.lanes[lane % self.lanes.len()].lock().await;
        let mut req = Request::builder()
            .method(call.method)
            .uri(call.path)
            .header(hyper::header::HOST, self.target.host.clone())
            .body(Full::new(call.body))
            .expect("paths and headers built by this crate are valid");
        req.headers_mut().extend(call.headers);
        let started = Instant::now();
        let attempt = tokio::time::timeout(self.timeout, async {
            // a connection the server closed while idle is replaced without counting an error
            let ready = match slot.as_mut() {
                Some(s) if !s.is_closed() => s.ready().await.is_ok(),
                _ => false,
            };
            if !ready {
                *slot = Some(self.connect().await?);
            }
            let sender = slot.as_mut().expect("connected above");
            sender.ready().await.map_err(Failure::Transport)?;
            let res = sender.send_request(req).await.map_err(Failure::Transport)?;
            let status = res.status();
            let retry_after_s = res
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(Failure::Transport)?
                .to_bytes();
            Ok((status, body, retry_after_s))
        })
        .await;
        match attempt {
            Ok(Ok((status, body, retry_after_s))) => Ok(Reply {
                status,
                body,
                latency: started.elapsed(),
                retry_after_s,
            }),
            Ok(Err(e)) => {
                *slot = None;
                Err(e)
            }
            Err(_) => {
                *slot = None;
                Err(Failure::Timeout)
            }
        }
    }
}
