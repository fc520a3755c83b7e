//! Ctrl-C presses for the terminal commands. `tokio::signal::ctrl_c()` only listens while its
//! future is being polled, so a press that lands between two polls of a `select!` loop (a piece
//! being printed, a row being read) was swallowed: the reply went on to its token limit. A
//! listener made once, before anything is printed, keeps every press for the next `pressed()`.

/// Listens for Ctrl-C from the moment it is made.
pub struct CtrlC {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
}

impl CtrlC {
    pub fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
        #[cfg(windows)]
        let signal = tokio::signal::windows::ctrl_c();
        Ok(Self { signal: anyhow::Context::context(signal, "cannot listen for Ctrl-C")? })
    }

    /// The next press (or one made since the last call).
    pub async fn pressed(&mut self) {
        if self.signal.recv().await.is_none() {
            // The runtime is shutting down: no press will come.
            std::future::pending::<()>().await;
        }
    }
}
