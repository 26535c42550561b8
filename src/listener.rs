//! The accept loop: HTTP/1.1 connections served by hyper, with the axum application as the
//! service, under limits that keep any number of clients from exhausting the process.
//!
//! - At most `max_connections` connections are open; the limit is kept below the open-file
//!   limit (see `config::connection_cap`), and while it is reached the loop stops accepting,
//!   so further clients wait in the kernel's backlog instead of making `accept` fail.
//! - A connection waiting for its next request is closed after `idle_timeout` (hyper's
//!   header-read timer, which runs from the moment a connection starts waiting for a request
//!   head: it is the keep-alive timeout, and it also bounds any head).
//! - Once the first byte of a request head has arrived, the rest must follow within
//!   `header_read_timeout` (a watchdog per connection), so slowloris clients cannot hold
//!   connections open.
//! - Requests hyper cannot parse get an AWS error with a request id, like every other
//!   answer, instead of hyper's bare one (see `unparsable`).
//! - Accept errors (EMFILE when the process is out of descriptors) are logged and retried
//!   with a growing pause rather than ending the server or spinning.
//!
//! Body limits and the in-flight body budget live in `server`, where the body is read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::config::Limits;
use crate::unparsable::ParseErrorAnswers;

/// The first pause after a failed `accept`; it doubles up to [`MAX_ACCEPT_BACKOFF`].
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between two failed `accept`s.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// hyper's per-connection read buffer, which bounds a request head too: 64 KiB holds any head
/// a real client sends (targets over `server::MAX_URL_BYTES` still reach the handler and get
/// an AWS error), and keeps a hundred connections streaming bodies to a few MiB, where
/// hyper's default (about 400 KiB) let them take forty.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// How often, at most, the log says that every connection slot is taken.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// How long shutdown waits for open connections to finish their request; a client that does
/// not read its response cannot hold the process up for longer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// their current request and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(READ_BUFFER_BYTES)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut backoff = FIRST_ACCEPT_BACKOFF;
    let mut warned_full: Option<Instant> = None;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if warned_full.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                    warned_full = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "All connection slots are taken; new connections wait until one closes."
                    );
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    backoff = FIRST_ACCEPT_BACKOFF;
                    stream
                }
                Err(error) if is_per_connection(&error) => continue,
                Err(error) => {
                    tracing::warn!(
                        %error,
                        retry_in = ?backoff,
                        "Cannot accept a connection (with 'Too many open files', the open-file limit is too low for limits.max_connections); retrying."
                    );
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            header_read_timeout: limits.header_read_timeout,
            stopping: stopping.clone(),
        };
        tokio::spawn(async move {
            connection.run(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: having them all back means all are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "Connections still open after {SHUTDOWN_GRACE:?} of shutdown are dropped."
        );
    }
    Ok(())
}

/// Errors that concern one connection only (it was reset before `accept` returned it).
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// One accepted connection and what it needs to be served.
struct Connection {
    builder: Arc<hyper::server::conn::http1::Builder>,
    app: axum::Router,
    header_read_timeout: Duration,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(Watched {
            inner: ParseErrorAnswers::new(stream, READ_BUFFER_BYTES),
            activity: activity.clone(),
        });
        let app = TowerToHyperService::new(self.app);
        let service = {
            let activity = activity.clone();
            service_fn(move |request: hyper::Request<Incoming>| {
                let serving = Serving::start(activity.clone());
                let response = hyper::service::Service::call(&app, request);
                async move {
                    let response = response.await;
                    drop(serving);
                    response
                }
            })
        };
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut draining = false;
        // One timer per connection, never re-armed by a request: it fires at least once per
        // `header_read_timeout`, and while a head is arriving it is set to that head's
        // deadline, so a late head is closed on time without a wake-up per request.
        let watchdog = tokio::time::sleep(self.header_read_timeout);
        tokio::pin!(watchdog);
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "Connection ended with an error.");
                    }
                    break;
                }
                () = watchdog.as_mut() => {
                    if activity.head_overdue(self.header_read_timeout) {
                        tracing::debug!("Closing a connection whose request head is late (limits.header_read_timeout_seconds).");
                        break;
                    }
                    let next = activity
                        .head_deadline(self.header_read_timeout)
                        .unwrap_or_else(|| Instant::now() + self.header_read_timeout);
                    watchdog.as_mut().reset(next);
                }
                changed = self.stopping.wait_for(|stop| *stop), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Where a connection is in its request cycle, as far as the header watchdog cares.
#[derive(Debug, Default, Clone, Copy)]
enum Phase {
    /// Waiting for a request (hyper's own timer bounds this).
    #[default]
    Idle,
    /// Bytes of a request head have arrived since this instant.
    Head(Instant),
    /// A request is being served; its body and response have their own bounds.
    Serving,
}

/// Per-connection state shared by the socket wrapper, the service and the watchdog.
#[derive(Default)]
struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    fn phase(&self) -> Phase {
        self.phase.lock().map(|phase| *phase).unwrap_or_default()
    }

    fn set(&self, phase: Phase) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    fn bytes_read(&self) {
        if let Ok(mut phase) = self.phase.lock() {
            if matches!(*phase, Phase::Idle) {
                *phase = Phase::Head(Instant::now());
            }
        }
    }

    fn head_deadline(&self, timeout: Duration) -> Option<Instant> {
        match self.phase() {
            Phase::Head(since) => Some(since + timeout),
            Phase::Idle | Phase::Serving => None,
        }
    }

    fn head_overdue(&self, timeout: Duration) -> bool {
        self.head_deadline(timeout)
            .is_some_and(|deadline| deadline <= Instant::now())
    }
}

/// Marks a connection as serving a request for as long as it lives (cancellation included).
struct Serving(Arc<Activity>);

impl Serving {
    fn start(activity: Arc<Activity>) -> Self {
        activity.set(Phase::Serving);
        Serving(activity)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.set(Phase::Idle);
    }
}

/// The socket, telling the connection's [`Activity`] when bytes arrive.
struct Watched {
    inner: ParseErrorAnswers<TcpStream>,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
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

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
}
