//! The one table from why a download failed (a [`TransferError`]) to words a person reads: what
//! happened, and what to do about it. The row keeps these words, so the card and the terminal
//! show the same sentences; the error's own text (its `Display`, with the causes) is the
//! technical account, kept beside them for "Details" and `--verbose`. No other part of the
//! engine writes sentences for people about a failed transfer.

use super::error::TransferError;
use super::files::is_disk_full;
use std::error::Error;
use std::io;

/// A failure in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Said {
    /// What happened, one sentence without its full stop: "This machine can't reach huggingface.co".
    pub what: String,
    /// What to do once the download has stopped, whole sentences.
    pub todo: String,
}

impl Said {
    /// The words of a download that has stopped: what happened, then what to do.
    pub fn stopped(&self) -> String {
        format!("{}. {}", self.what, self.todo)
    }
}

/// What to do when the file on the server is not the catalog's.
const OTHER_FILE: &str =
    "Nothing was installed. The catalog may need an update: update localbrain, or pick another model.";

impl TransferError {
    /// The words for this failure.
    pub fn said(&self) -> Said {
        use TransferError::*;
        let (what, todo): (String, &str) = match self {
            ProxySetting { variable, value } => {
                return Said {
                    what: format!("The proxy setting {variable} (\"{value}\") is not a proxy address localbrain can use"),
                    todo: format!(
                        "Set {variable} to an address like http://proxy.example:3128, or remove it, then try again."
                    ),
                };
            }
            ProxyUnreachable { variable, proxy, found, .. } => {
                let proxy = crate::store::redact(proxy);
                return Said {
                    what: match found {
                        false => format!("The proxy {proxy} (set in {variable}) can't be found"),
                        true => format!("The proxy {proxy} (set in {variable}) refused the connection"),
                    },
                    todo: format!(
                        "Check that the proxy is running and that {variable} names it rightly, or remove the setting, then try again."
                    ),
                };
            }
            Unreachable { host, source } => match reach(source) {
                Reach::Offline => {
                    (format!("This machine can't reach {host}"), "Check the internet connection, then try again.")
                }
                Reach::Refused => (
                    format!("{host} refused the connection"),
                    "The site may be down, or a firewall or proxy is in the way. Try again later.",
                ),
                Reach::Certificate => (
                    format!("The secure connection to {host} failed: its certificate is not trusted"),
                    "Something on this network (a filter or a proxy) may be intercepting connections. Try another network, or ask whoever runs this one.",
                ),
                Reach::Other => (
                    format!("This machine can't connect to {host}"),
                    "Check the internet connection and any proxy settings, then try again.",
                ),
            },
            NoAnswer { host } => {
                (format!("{host} did not answer in time"), "The site or the connection is slow. Try again later.")
            }
            Stalled { host, secs } => (
                format!("The download from {host} stalled: no data for {secs} s"),
                "The connection may be unreliable. Try again; what was downloaded is kept.",
            ),
            Broken { host, .. } | EndedEarly { host, .. } => {
                (format!("The connection to {host} broke off"), "Try again; what was downloaded is kept.")
            }
            Busy { host, status } => {
                (format!("{host} is busy (it answered {})", status.as_u16()), "Try again in a few minutes.")
            }
            Refused { status, host } => match status.as_u16() {
                401 => (
                    format!("{host} wants a login, or a licence accepted, before it sends this model (it answered 401)"),
                    "Pick another model, or accept the model's licence on its page and try again.",
                ),
                403 => (
                    format!("{host} refuses to send this model (it answered 403)"),
                    "It may want a login, or the model's licence accepted on its page; else pick another model.",
                ),
                404 => (
                    format!("{host} no longer has this file (it answered 404): it has moved"),
                    "The catalog needs an update: update localbrain, or pick another model.",
                ),
                410 => (
                    format!("{host} has removed this file (it answered 410)"),
                    "The catalog needs an update: update localbrain, or pick another model.",
                ),
                code => (
                    format!("{host} refused to send the file (it answered {code})"),
                    "Try again later, or pick another model.",
                ),
            },
            WebPage { host, .. } => (
                format!("{host} sent a web page, not the model: it may want a login or be limiting requests"),
                "Try again later, or pick another model.",
            ),
            NotTheModel { host, bytes, .. } => (
                format!(
                    "The network answered with a page of its own instead of the model ({host} sent {bytes} bytes): it may want you to sign in first"
                ),
                "If this network has a sign-in page (hotel, café or office Wi-Fi), open any web page in a browser and sign in, then try again.",
            ),
            WrongSize { host, server, catalog } => (
                format!(
                    "{host} has a different file than the catalog lists: it is {server} bytes, the catalog says {catalog}"
                ),
                OTHER_FILE,
            ),
            TooLong { host, size } => {
                (format!("{host} sent more than the catalog's {size} bytes: it is a different file"), OTHER_FILE)
            }
            Restart(why) => (format!("The download had to start over: {why}"), "Try again."),
            Corrupt { .. } => (
                "The downloaded file is corrupt: its SHA-256 fingerprint does not match the catalog, so nothing was installed"
                    .to_string(),
                "It was probably damaged on the way. Try again.",
            ),
            NotInCatalog(id) => (format!("{id} is no longer in the catalog"), "Pick another model."),
            // The last failure says what was wrong; the count is in the details.
            GaveUp { last, .. } => return last.said(),
            File { source, .. } if is_disk_full(source) => (
                "The disk is full".to_string(),
                "Free some space, then try again; what was downloaded is kept.",
            ),
            File { what, .. } => (
                format!("localbrain could not use the model's file ({what})"),
                "Check that the models folder exists and can be written, then try again.",
            ),
            Record(_) => (
                "localbrain could not record the download in its database".to_string(),
                "Try again; if it happens again, the server's log says why.",
            ),
            Crashed(_) => (
                "The download stopped unexpectedly (an internal error; it is in the server's log)".to_string(),
                "Try again.",
            ),
        };
        Said { what, todo: todo.to_string() }
    }
}

/// Why a host could not be reached, as far as the error's causes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// No network, or a name that does not resolve: the usual "offline".
    Offline,
    /// The host (or something in the way) refused the connection.
    Refused,
    /// The TLS certificate was not accepted.
    Certificate,
    Other,
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
