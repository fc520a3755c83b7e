//! A loopback port that refuses every connection, and keeps refusing for as long as it is held.

use std::net::SocketAddr;

/// A socket bound to a loopback port and never listening: a connection to it is refused (the
/// kernel answers RST) while no other test can take the port. A port that was bound and let go
/// at once is only free: under a parallel test run another test's server could take it, and a
/// "refused" test would then meet that server instead (CI saw it once).
pub struct RefusingPort {
    _socket: tokio::net::TcpSocket,
    /// The port held.
    pub port: u16,
}

impl RefusingPort {
    /// Binds a fresh loopback port without listening on it.
    pub fn new() -> RefusingPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind a loopback port");
        let port = socket.local_addr().expect("the bound address").port();
        RefusingPort { _socket: socket, port }
    }

    /// `http://127.0.0.1:PORT` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        Self::new()
    }
}
