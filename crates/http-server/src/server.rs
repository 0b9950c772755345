//! The running server: bound listener, graceful shutdown.

use hs_core::observe::targets;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hs_core::observe::GuardedObserver;
use hs_listener::{AcceptLoop, ConnLimits, ServerTls};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::HttpServerError;

/// How long [`HttpServer::shutdown`] waits for in-flight requests before it
/// aborts the server task.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running HTTP server, started by
/// [`HttpServerBuilder::bind`](crate::HttpServerBuilder::bind).
///
/// Dropping it signals a graceful shutdown without waiting for it; call
/// [`shutdown`](Self::shutdown) to wait.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    base_path: String,
    scheme: &'static str,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    grace: Duration,
}

impl HttpServer {
    /// Starts serving `router` on `listener`.
    pub(crate) fn start(
        listener: TcpListener,
        router: Router,
        base_path: String,
        grace: Duration,
        limits: ConnLimits,
        tls: Option<ServerTls>,
        observer: GuardedObserver,
    ) -> Result<Self, HttpServerError> {
        let local_addr = listener.local_addr().map_err(HttpServerError::Bind)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (shutdown, signal) = oneshot::channel::<()>();
        let accept = AcceptLoop::new(targets::HTTP_SERVER)
            .limits(limits)
            .observer(observer)
            .tls(tls);
        let task = tokio::spawn(accept.serve(listener, router, async move {
            // A dropped sender is a shutdown request too.
            let _ = signal.await;
        }));
        log::info!(target: targets::HTTP_SERVER, "listening on {scheme}://{local_addr}{base_path}");
        Ok(HttpServer {
            local_addr,
            base_path,
            scheme,
            shutdown: Some(shutdown),
            task: Some(task),
            grace,
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234/api`, or
    /// `https://...` when the server was given
    /// [`tls`](crate::HttpServerBuilder::tls).
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.local_addr, self.base_path)
    }

    /// Stops accepting connections, lets in-flight requests finish (at most
    /// the grace period, then aborts), and returns once the server is down.
    pub async fn shutdown(mut self) -> Result<(), HttpServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        let result = match tokio::time::timeout(self.grace, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(HttpServerError::Serve(error)),
            Ok(Err(join)) => Err(HttpServerError::Task(join.to_string())),
            Err(_elapsed) => {
                log::warn!(
                    target: targets::HTTP_SERVER,
                    "requests still running {:?} after shutdown began; aborting",
                    self.grace
                );
                task.abort();
                Ok(())
            }
        };
        log::info!(target: targets::HTTP_SERVER, "stopped {}://{}{}", self.scheme, self.local_addr, self.base_path);
        result
    }

    /// Serves until the server task ends on its own (an I/O error). For a
    /// server that runs until Ctrl-C, await the signal and call
    /// [`shutdown`](Self::shutdown) instead.
    pub async fn wait(mut self) -> Result<(), HttpServerError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(HttpServerError::Serve(error)),
            Err(join) => Err(HttpServerError::Task(join.to_string())),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
