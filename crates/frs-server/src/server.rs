//! Binding, serving and graceful shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::{AppState, ServerConfig, router};

/// Binds `config.listen` and serves until `shutdown` completes, then stops accepting connections
/// and waits up to `config.shutdown_timeout_secs` for in-flight requests.
pub async fn serve(
    config: ServerConfig,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    serve_on(listener, config, state, shutdown).await
}

/// [`serve`] on an already bound listener (e.g. port 0 in tests); `config.listen` is ignored.
pub async fn serve_on(
    listener: TcpListener,
    config: ServerConfig,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let app = router(state.with_body_limit(config.body_limit_bytes));
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stopping_tx.send(());
    });
    tracing::info!(server.address = %address, "listening");
    let grace = Duration::from_secs(config.shutdown_timeout_secs);
    tokio::select! {
        result = server => result,
        () = async {
            // Never resolves while the server runs; after the shutdown signal, bounds the drain.
            if stopping_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(shutdown_timeout_secs = config.shutdown_timeout_secs, "in-flight requests did not finish in time, closing");
            Ok(())
        }
    }
}
