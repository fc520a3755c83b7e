//! A loopback host below HTTP, for failures no well-behaved server produces: a reply of raw
//! bytes (a broken HTTP head, a TLS handshake with a bad certificate), then a clean close, a
//! reset, a hang, or a wait for the client to hang up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a [`RawHost`] does once it has read a request and written its reply.
#[derive(Clone, Copy, Debug)]
pub enum Then {
    /// Keeps the connection open until the client hangs up.
    WaitForClose,
    /// Closes cleanly (a FIN).
    Close,
    /// Closes with a TCP reset (SO_LINGER 0).
    Reset,
    /// Keeps the connection open and says nothing more.
    Hang,
}

/// A loopback host below HTTP: on every connection it reads one request (an HTTP head or a TLS
/// ClientHello), writes `reply` as it is, then does what [`Then`] says. Counts connections.
#[derive(Clone)]
pub struct RawHost {
    pub addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl RawHost {
    pub async fn start(reply: Vec<u8>, then: Then) -> RawHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer_raw(stream, reply.clone(), then));
            }
        });
        RawHost { addr, connections }
    }

    /// `scheme://addr/path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn answer_raw(mut stream: TcpStream, reply: Vec<u8>, then: Then) {
    read_request(&mut stream).await;
    let _ = stream.write_all(&reply).await;
    match then {
        Then::WaitForClose => {
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        // The whole request was read, so the kernel closes with a FIN, not a reset.
        Then::Close => {}
        Then::Reset => {
            let _ = stream.set_zero_linger();
        }
        Then::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

/// Reads one request: an HTTP head up to its blank line, or one whole TLS record (a ClientHello).
async fn read_request(stream: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let whole = match got.first() {
            Some(0x16) => got.len() >= 5 && got.len() >= 5 + u16::from_be_bytes([got[3], got[4]]) as usize,
            _ => got.windows(4).any(|w| w == b"\r\n\r\n"),
        };
        if whole {
            return;
        }
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
}

/// A self-signed certificate for localhost and 127.0.0.1, good until 2126 (`openssl req -x509
/// -newkey ec -addext basicConstraints=critical,CA:FALSE`): no root signed it, so every client
/// refuses it (rustls: UnknownIssuer).
pub const SELF_SIGNED_CERT: &[u8] = include_bytes!("../data/localhost-self-signed.der");

/// A TLS 1.2 server's first flight presenting `cert`: ServerHello (ECDHE-ECDSA with AES-128-GCM),
/// Certificate, ServerKeyExchange (a well-formed x25519 share with a signature nobody could
/// check), ServerHelloDone. A client checks the certificate chain before that signature, so this
/// is all a [`RawHost`] needs to show a client a bad certificate, without a TLS library.
pub fn tls12_hello_with(cert: &[u8]) -> Vec<u8> {
    fn len3(n: usize) -> [u8; 3] {
        let b = (n as u32).to_be_bytes();
        [b[1], b[2], b[3]]
    }
    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        [&[kind][..], &len3(body.len()), body].concat()
    }
    let mut hello = vec![0x03, 0x03];
    hello.extend([0x42; 32]); // the server random (not the TLS 1.3 downgrade marker)
    hello.push(0); // no session id
    hello.extend([0xC0, 0x2B]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    hello.push(0); // no compression
    hello.extend([0, 0]); // no extensions
    let certs = [&len3(cert.len() + 3)[..], &len3(cert.len()), cert].concat();
    let mut kx = vec![3, 0x00, 0x1D, 32]; // a named curve, x25519, a 32-byte share
    kx.extend([0x11; 32]);
    kx.extend([0x04, 0x03, 0, 8]); // ecdsa_secp256r1_sha256, an 8-byte signature
    kx.extend([0; 8]);
    let flight = [message(2, &hello), message(11, &certs), message(12, &kx), message(14, &[])].concat();
    [&[0x16, 0x03, 0x03][..], &(flight.len() as u16).to_be_bytes(), &flight].concat()
}
