//! Serving connections: hyper-util's server (HTTP/1.1, and HTTP/2 with prior knowledge) under the limits
//! that keep a slow or greedy client from starving the others (`http.*`, README "Configuration
//! reference"):
//!
//! - at most `max_connections` open at once, fewer when the open-files limit leaves less room (the
//!   store, media files and the GeoIP database keep a tenth of it); past the cap the listener waits, so
//!   new connections queue in the kernel instead of failing;
//! - at most `max_connections_per_address` per client address (IPv6: its /64), except peers that carry
//!   many clients (`trusted_proxies`, `uncapped_peers`); one more is closed at once;
//! - a request's line and headers must arrive within `header_read_timeout_s` of its first byte, and a
//!   connection with no request under way is closed after `idle_timeout_s` ([`Watch`]; hyper's own header
//!   timer would also close every idle keep-alive connection after it);
//! - request heads of at most `max_header_bytes`, and `max_concurrent_streams` per HTTP/2 connection;
//! - accept errors such as `EMFILE` back off (up to a second) instead of spinning.
//!
//! On shutdown the listener closes, every connection finishes its requests and closes
//! (`graceful_shutdown`), and after `drain_timeout_s` the rest are cut.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::settings::Config;

/// Whom a per-address cap counts: an IPv4 address (an IPv4-mapped IPv6 one too), or the /64 of an IPv6
/// address (one subscriber's network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address.
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => Self::V4(u32::from(a)),
            IpAddr::V6(a) => Self::V6((u128::from(a) >> 64) as u64),
        }
    }
}

/// How connections are served: the `http.*` limits, resolved.
#[derive(Debug, Clone)]
pub struct Serving {
    /// From a request's first byte to the end of its headers.
    pub header_read: Duration,
    /// With no request under way.
    pub idle: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections per client address (0: no cap).
    pub per_address: usize,
    /// Peers not capped per address.
    pub uncapped: Vec<IpNet>,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// How long the connections may take to finish after shutdown begins.
    pub drain: Duration,
}

impl Serving {
    /// The limits of `config`, with the connection cap brought under the open-files limit `open_files`
    /// (the soft limit; `None`: unknown).
    pub fn new(config: &Config, open_files: Option<u64>) -> Self {
        let h = &config.http;
        let mut max_connections = h.max_connections;
        if let Some(limit) = open_files {
            let room = usize::try_from(fd_room(limit)).unwrap_or(usize::MAX).max(1);
            if room < max_connections {
                tracing::info!(
                    http.max_connections = max_connections,
                    open_files = limit,
                    connections = room,
                    "the open-files limit leaves room for fewer connections than http.max_connections; \
                     raise it (LimitNOFILE=, ulimit -n) to accept more"
                );
                max_connections = room;
            }
        }
        let mut uncapped = config.trusted_proxies.clone();
        uncapped.extend(h.uncapped_peers());
        Self {
            header_read: Duration::from_secs(h.header_read_timeout_s),
            idle: Duration::from_secs(h.idle_timeout_s),
            max_connections,
            per_address: h.max_connections_per_address,
            uncapped,
            max_header_bytes: h.max_header_bytes,
            max_concurrent_streams: h.max_concurrent_streams,
            drain: Duration::from_secs(h.drain_timeout_s),
        }
    }
}

/// Of an open-files limit, what connections may use: a tenth (and 16 more) stays for the store, media
/// files, the GeoIP database, logs and the runtime.
fn fd_room(limit: u64) -> u64 {
    limit.saturating_sub(limit / 10 + 16)
}

/// Raises the soft open-files limit to the hard one (as Go's runtime does), so the connection cap, not
/// the default 1,024 descriptors, bounds what a node accepts; returns the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Serves `router` on `listener` until `stop`, then drains: returns whether every connection finished
/// within [`Serving::drain`] (the others were cut).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    serving: Serving,
    stop: CancellationToken,
) -> bool {
    let serving = Arc::new(serving);
    let builder = Arc::new(builder(&serving));
    let open = Arc::new(Semaphore::new(serving.max_connections));
    let addresses = Arc::new(Addresses::new(&serving));
    let signals = Arc::new(Signals::default());
    let connections = TaskTracker::new();
    let mut backoff = Duration::ZERO;
    metrics::gauge!("usher_connections_max").set(serving.max_connections as f64);
    loop {
        // at the cap, wait for a connection to close before accepting: new ones queue in the backlog
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // out of descriptors, buffers or memory: retry later rather than spin on the error
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                metrics::counter!("usher_accept_errors_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept error");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => continue,
                    () = stop.cancelled() => break,
                }
            }
        };
        let Some(slot) = addresses.take(peer.ip()) else {
            metrics::counter!("usher_connections_refused_total", "reason" => "per_address")
                .increment(1);
            tracing::debug!(client.address = %crate::logged::client_address(peer.ip()), "connection refused: too many from this address");
            drop(tcp);
            continue;
        };
        // small answers (heartbeats, playlists) must not wait for Nagle's algorithm
        let _ = tcp.set_nodelay(true);
        connections.spawn(connection(Connection {
            tcp,
            peer,
            router: router.clone(),
            builder: builder.clone(),
            serving: serving.clone(),
            signals: signals.clone(),
            _permit: permit,
            _slot: slot,
        }));
    }
    // stop accepting: new connections are refused from here on
    drop(listener);
    signals.raise(Signals::STOP);
    connections.close();
    if tokio::time::timeout(serving.drain, connections.wait())
        .await
        .is_ok()
    {
        return true;
    }
    signals.raise(Signals::CUT);
    connections.wait().await;
    false
}

fn builder(serving: &Serving) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // the header deadline is `Watch`'s, from a request's first byte: hyper's starts when a
        // connection goes idle, so it would also close keep-alive connections between heartbeats
        .header_read_timeout(None)
        .max_buf_size(serving.max_header_bytes)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(serving.max_concurrent_streams)
        .max_header_list_size(u32::try_from(serving.max_header_bytes).unwrap_or(u32::MAX));
    b
}

/// Errors of one connection that the listener itself survives (the peer gave up before the accept).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Open connections per client address.
struct Addresses {
    cap: usize,
    uncapped: Vec<IpNet>,
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl Addresses {
    fn new(serving: &Serving) -> Self {
        Self {
            cap: serving.per_address,
            uncapped: serving.uncapped.clone(),
            open: Mutex::default(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when it holds its cap already.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        if self.cap == 0 || self.uncapped.iter().any(|n| n.contains(&ip)) {
            return Some(Slot(None));
        }
        let key = ClientKey::from(ip);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(key).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Slot(Some((self.clone(), key))))
    }
}

/// One connection's place under its address's cap, given back when it closes.
struct Slot(Option<(Arc<Addresses>, ClientKey)>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((addresses, key)) = self.0.take() {
            let mut open = addresses
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = open.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&key);
                }
            }
        }
    }
}

struct Connection {
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    serving: Arc<Serving>,
    signals: Arc<Signals>,
    _permit: OwnedSemaphorePermit,
    _slot: Slot,
}

/// Why a connection was closed by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// A request began and its headers did not arrive in time.
    HeaderRead,
    /// No request for the idle timeout.
    Idle,
}

impl Expiry {
    fn label(self) -> &'static str {
        match self {
            Self::HeaderRead => "header_timeout",
            Self::Idle => "idle",
        }
    }
}

async fn connection(c: Connection) {
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched {
        inner: c.tcp,
        watch: watch.clone(),
        preface: 0,
    });
    let service = PerConnection {
        router: c.router,
        peer: c.peer,
        watch: watch.clone(),
    };
    metrics::gauge!("usher_connections_open").increment(1.0);
    let conn = c.builder.serve_connection(io, service);
    tokio::pin!(conn);
    // The connection's turns, written out rather than as a `select!` (issue 16), so that a turn costs
    // no shared lock and a request no extra turn:
    // - a request's head beginning is seen right after the turn in which hyper read it (the socket is
    //   read only inside `conn`'s poll), not through a wake-up of this task: a wake-up was a second turn
    //   per request;
    // - the listener's signals are one atomic load per turn ([`Signals`]): polling two cancellation
    //   futures took four locks every connection shares (each token's and its notifier's) per turn.
    // The timer is set for the connection's deadline or earlier: moved earlier when a head begins, and
    // set again when it fires before the deadline.
    let timer = tokio::time::sleep_until(watch.deadline(&c.serving));
    tokio::pin!(timer);
    let signal = c.signals.wake.notified();
    tokio::pin!(signal);
    let mut listening = false;
    let mut closing = false;
    std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(r) = conn.as_mut().poll(cx) {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return Poll::Ready(());
            }
            if watch.head_began.swap(false, Ordering::Relaxed) {
                let deadline = watch.deadline(&c.serving);
                if deadline < timer.deadline() {
                    timer.as_mut().reset(deadline);
                }
            }
            // read after `signal` was made, so a signal raised in between is either seen here or
            // makes `signal` ready
            match c.signals.level.load(Ordering::Acquire) {
                Signals::RUNNING => {}
                Signals::STOP if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    // listen again, for the cut
                    signal.set(c.signals.wake.notified());
                    listening = false;
                    continue;
                }
                Signals::STOP => {}
                _ => return Poll::Ready(()),
            }
            if !listening {
                // polled once, it holds this task's waker until a signal (the task's waker stays the
                // same, so it need not be polled on every turn)
                if signal.as_mut().poll(cx).is_ready() {
                    signal.set(c.signals.wake.notified());
                    continue;
                }
                listening = true;
            }
            if timer.as_mut().poll(cx).is_ready() {
                if let Some(expiry) = watch.expired(&c.serving, Instant::now()) {
                    metrics::counter!("usher_connections_closed_total", "reason" => expiry.label())
                        .increment(1);
                    // a late header gets no answer (hyper's own timeout sends none either); an idle
                    // connection is closed the polite way first (HTTP/2: GOAWAY)
                    if expiry == Expiry::HeaderRead || closing {
                        return Poll::Ready(());
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                timer.as_mut().reset(watch.deadline(&c.serving));
                continue;
            }
            return Poll::Pending;
        }
    })
    .await;
    metrics::gauge!("usher_connections_open").decrement(1.0);
}

/// What the listener tells its connections: to finish their requests and close ([`Signals::STOP`]),
/// then to close at once ([`Signals::CUT`]). A connection reads `level` on every turn; `wake` only
/// wakes it when the level rises.
#[derive(Default)]
struct Signals {
    level: std::sync::atomic::AtomicU8,
    wake: Notify,
}

impl Signals {
    const RUNNING: u8 = 0;
    const STOP: u8 = 1;
    const CUT: u8 = 2;

    fn raise(&self, to: u8) {
        self.level.fetch_max(to, Ordering::AcqRel);
        self.wake.notify_waiters();
    }
}

/// What a connection's deadlines watch: requests under way, since when it is idle, and since when the
/// next request's first bytes are waiting for the rest of its head. Times are milliseconds since the
/// connection opened (`head_ms` is 0 when no head is under way, so it starts at 1).
struct Watch {
    opened: Instant,
    busy: AtomicUsize,
    idle_ms: AtomicU64,
    head_ms: AtomicU64,
    /// HTTP/2: its frames between requests (pings, window updates) are no request head.
    http2: AtomicBool,
    /// A head began since the connection's task last looked (its deadline is then the header deadline).
    head_began: AtomicBool,
}

impl Watch {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            head_began: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// Bytes arrived; with no request under way on HTTP/1 they begin the next request's head.
    fn read(&self) {
        if self.busy.load(Ordering::Acquire) == 0
            && !self.http2.load(Ordering::Relaxed)
            && self
                .head_ms
                .compare_exchange(0, self.now_ms().max(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.head_began.store(true, Ordering::Relaxed);
        }
    }

    /// The connection turned out to speak HTTP/2.
    fn speaks_http2(&self) {
        self.http2.store(true, Ordering::Relaxed);
        self.head_ms.store(0, Ordering::Release);
    }

    /// A request reached the router: its head is complete.
    fn request(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_ms.store(0, Ordering::Release);
        Busy(self.clone())
    }

    /// When to look again.
    fn deadline(&self, s: &Serving) -> Instant {
        if self.busy.load(Ordering::Acquire) > 0 {
            // requests have their own time limit; look again later
            return Instant::now() + s.idle;
        }
        match self.head_ms.load(Ordering::Acquire) {
            0 => self.at(self.idle_ms.load(Ordering::Acquire)) + s.idle,
            head => self.at(head) + s.header_read,
        }
    }

    /// Whether a deadline has passed at `now`, and which.
    fn expired(&self, s: &Serving, now: Instant) -> Option<Expiry> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_ms.load(Ordering::Acquire) {
            0 => (now >= self.at(self.idle_ms.load(Ordering::Acquire)) + s.idle)
                .then_some(Expiry::Idle),
            head => (now >= self.at(head) + s.header_read).then_some(Expiry::HeaderRead),
        }
    }
}

/// A request under way on a connection, from the router's call to the end of its answer's body.
struct Busy(Arc<Watch>);

impl Drop for Busy {
    fn drop(&mut self) {
        let w = &self.0;
        if w.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            w.idle_ms.store(w.now_ms(), Ordering::Release);
        }
    }
}

/// The HTTP/2 connection preface a client with prior knowledge sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The socket, telling its [`Watch`] of every read.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
    /// How many bytes of the HTTP/2 preface the stream began with so far; 24: it is HTTP/2; `u8::MAX`:
    /// it is not.
    preface: u8,
}

impl Watched {
    fn note(&mut self, bytes: &[u8]) {
        if usize::from(self.preface) < H2_PREFACE.len() {
            let at = usize::from(self.preface);
            let n = bytes.len().min(H2_PREFACE.len() - at);
            self.preface = if bytes[..n] == H2_PREFACE[at..at + n] {
                // at most 24
                (at + n) as u8
            } else {
                u8::MAX
            };
            if usize::from(self.preface) == H2_PREFACE.len() {
                self.watch.speaks_http2();
                return;
            }
        }
        self.watch.read();
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            let filled = buf.filled();
            let this = &mut *self;
            this.note(&filled[before..]);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as one connection's service: each request carries the peer's address (`ConnectInfo`,
/// which `ClientIp` reads) and counts as under way until its answer's body is done.
#[derive(Clone)]
struct PerConnection {
    router: Router,
    peer: SocketAddr,
    watch: Arc<Watch>,
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let busy = self.watch.request();
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let answer = self.router.clone().oneshot(req.map(Body::new));
        Box::pin(async move {
            let res = match answer.await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            Ok(res.map(|body| Tracked { body, _busy: busy }))
        })
    }
}

/// An answer's body, holding its request's [`Busy`] until it is sent or dropped.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::from(a), ClientKey::from(b));
        assert_ne!(ClientKey::from(a), ClientKey::from(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ClientKey::from(v4), ClientKey::from(mapped));
    }

    #[test]
    fn connections_leave_a_tenth_of_the_descriptors() {
        assert_eq!(fd_room(1024), 906);
        assert_eq!(fd_room(10), 0);
        assert_eq!(fd_room(1_048_576), 943_703);
    }
}
