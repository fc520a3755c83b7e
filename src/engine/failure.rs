//! Why a download failed, as its row keeps it: the kind of failure and the facts its words
//! need (hosts, statuses, sizes), a small typed value stored as JSON in
//! `model_downloads.error_kind`. The sentences a person reads are made from it when the row is
//! read (`words`), not when it is written, so a better words table rewords old rows too. A row
//! with no kind, or one this build cannot read (written by a newer one), shows the sentence
//! stored beside it.

use super::error::TransferError;
use super::files::is_disk_full;
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::io;

/// A failure's kind and facts. Serialized with a `kind` tag: `{"kind":"busy","host":"x","status":503}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    Unreachable {
        host: String,
        reach: Reach,
    },
    ProxySetting {
        variable: String,
        value: String,
    },
    /// `found`: whether the proxy's name resolved (then its address refused the connection).
    ProxyUnreachable {
        variable: String,
        proxy: String,
        found: bool,
    },
    NoAnswer {
        host: String,
    },
    Stalled {
        host: String,
        secs: u64,
    },
    /// The connection broke off, or the body ended before its bytes.
    Broken {
        host: String,
    },
    Busy {
        host: String,
        status: u16,
    },
    Refused {
        host: String,
        status: u16,
    },
    WebPage {
        host: String,
    },
    NotTheModel {
        host: String,
        bytes: u64,
    },
    WrongSize {
        host: String,
        server: u64,
        catalog: u64,
    },
    TooLong {
        host: String,
        size: u64,
    },
    Restart {
        why: String,
    },
    Corrupt,
    NotInCatalog {
        model: String,
    },
    DiskFull,
    File {
        what: String,
    },
    Record,
    Crashed,
}

/// Why a host could not be reached, as far as the error's causes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// No network, or a name that does not resolve: the usual "offline".
    Offline,
    /// The host (or something in the way) refused the connection.
    Refused,
    /// The TLS certificate was not accepted.
    Certificate,
    Other,
}

impl Failure {
    /// The JSON the row keeps.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a failure always serializes")
    }

    /// A kept failure; `None` for one this build does not know (a newer build wrote it).
    pub fn from_json(text: &str) -> Option<Failure> {
        serde_json::from_str(text).ok()
    }
}

impl TransferError {
    /// This failure's kind and facts, as the row keeps them.
    pub fn failure(&self) -> Failure {
        use TransferError::*;
        match self {
            Unreachable { host, source } => Failure::Unreachable { host: host.clone(), reach: reach(source) },
            ProxySetting { variable, value } => {
                Failure::ProxySetting { variable: variable.to_string(), value: value.clone() }
            }
            ProxyUnreachable { variable, proxy, found, .. } => Failure::ProxyUnreachable {
                variable: variable.to_string(),
                proxy: crate::store::redact(proxy),
                found: *found,
            },
            NoAnswer { host } => Failure::NoAnswer { host: host.clone() },
            Stalled { host, secs } => Failure::Stalled { host: host.clone(), secs: *secs },
            Broken { host, .. } | EndedEarly { host, .. } => Failure::Broken { host: host.clone() },
            Busy { host, status } => Failure::Busy { host: host.clone(), status: status.as_u16() },
            Refused { host, status } => Failure::Refused { host: host.clone(), status: status.as_u16() },
            WebPage { host, .. } => Failure::WebPage { host: host.clone() },
            NotTheModel { host, bytes, .. } => Failure::NotTheModel { host: host.clone(), bytes: *bytes },
            WrongSize { host, server, catalog } => {
                Failure::WrongSize { host: host.clone(), server: *server, catalog: *catalog }
            }
            TooLong { host, size } => Failure::TooLong { host: host.clone(), size: *size },
            Restart(why) => Failure::Restart { why: why.to_string() },
            Corrupt { .. } => Failure::Corrupt,
            NotInCatalog(id) => Failure::NotInCatalog { model: id.clone() },
            // The last failure says what was wrong; the count is in the details.
            GaveUp { last, .. } => last.failure(),
            File { source, .. } if is_disk_full(source) => Failure::DiskFull,
            File { what, .. } => Failure::File { what: what.to_string() },
            Record(_) => Failure::Record,
            Crashed(_) => Failure::Crashed,
        }
    }
}

/// Walks the causes. hyper-util tells a failed name lookup only in its words ("dns error"), and
/// rustls a refused certificate through an `io::Error` whose message names the certificate: both
/// are matched on text, every other cause on its type.
fn reach(e: &reqwest::Error) -> Reach {
    let mut cause: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Reach::Offline;
        }
        if text.contains("certificate") {
            return Reach::Certificate;
        }
        if let Some(io) = c.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return Reach::Refused,
                io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkDown
                | io::ErrorKind::TimedOut => return Reach::Offline,
                _ => {}
            }
        }
        cause = super::retry::next_cause(c);
    }
    if e.is_timeout() { Reach::Offline } else { Reach::Other }
}
