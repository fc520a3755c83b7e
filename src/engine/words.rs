//! The one table from why a download failed (a [`Failure`]: its kind and facts) to words a
//! person reads: what happened, and what to do about it. The row keeps the failure, and the
//! words are made from it each time the row is read, so the card and the terminal show the same
//! sentences and a better table rewords old rows too. The error's own text (its `Display`, with
//! the causes) is the technical account, kept beside them for "Details" and `--verbose`. No
//! other part of the engine writes sentences for people about a failed transfer.

use super::error::TransferError;
use super::failure::{Failure, Reach};

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

/// What to do when the catalog points at a file that is gone.
const CATALOG_UPDATE: &str = "The catalog needs an update: update localbrain, or pick another model.";

impl TransferError {
    /// The words for this failure.
    pub fn said(&self) -> Said {
        self.failure().said()
    }
}

impl Failure {
    /// The words for this failure.
    pub fn said(&self) -> Said {
        use Failure::*;
        let (what, todo): (String, String) = match self {
            Unreachable { host, reach } => {
                let (what, todo) = match reach {
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
                };
                (what, todo.to_string())
            }
            ProxySetting { variable, value } => (
                format!("The proxy setting {variable} (\"{value}\") is not a proxy address localbrain can use"),
                format!("Set {variable} to an address like http://proxy.example:3128, or remove it, then try again."),
            ),
            ProxyUnreachable { variable, proxy, found } => (
                match found {
                    false => format!("The proxy {proxy} (set in {variable}) can't be found"),
                    true => format!("The proxy {proxy} (set in {variable}) refused the connection"),
                },
                format!(
                    "Check that the proxy is running and that {variable} names it rightly, or remove the setting, then try again."
                ),
            ),
            NoAnswer { host } => {
                (format!("{host} did not answer in time"), "The site or the connection is slow. Try again later.".into())
            }
            Stalled { host, secs } => (
                format!("The download from {host} stalled: no data for {secs} s"),
                "The connection may be unreliable. Try again; what was downloaded is kept.".into(),
            ),
            Broken { host } => {
                (format!("The connection to {host} broke off"), "Try again; what was downloaded is kept.".into())
            }
            Busy { host, status } => {
                (format!("{host} is busy (it answered {status})"), "Try again in a few minutes.".into())
            }
            Refused { host, status } => match status {
                401 => (
                    format!("{host} wants a login, or a licence accepted, before it sends this model (it answered 401)"),
                    "Pick another model, or accept the model's licence on its page and try again.".into(),
                ),
                403 => (
                    format!("{host} refuses to send this model (it answered 403)"),
                    "It may want a login, or the model's licence accepted on its page; else pick another model.".into(),
                ),
                404 => (
                    format!("{host} no longer has this file (it answered 404): it has moved"),
                    CATALOG_UPDATE.into(),
                ),
                410 => (format!("{host} has removed this file (it answered 410)"), CATALOG_UPDATE.into()),
                code => (
                    format!("{host} refused to send the file (it answered {code})"),
                    "Try again later, or pick another model.".into(),
                ),
            },
            WebPage { host } => (
                format!("{host} sent a web page, not the model: it may want a login or be limiting requests"),
                "Try again later, or pick another model.".into(),
            ),
            NotTheModel { host, bytes } => (
                format!(
                    "The network answered with a page of its own instead of the model ({host} sent {bytes} bytes): it may want you to sign in first"
                ),
                "If this network has a sign-in page (hotel, café or office Wi-Fi), open any web page in a browser and sign in, then try again.".into(),
            ),
            WrongSize { host, server, catalog } => (
                format!(
                    "{host} has a different file than the catalog lists: it is {server} bytes, the catalog says {catalog}"
                ),
                OTHER_FILE.into(),
            ),
            TooLong { host, size } => {
                (format!("{host} sent more than the catalog's {size} bytes: it is a different file"), OTHER_FILE.into())
            }
            Restart { why } => (format!("The download had to start over: {why}"), "Try again.".into()),
            Corrupt => (
                "The downloaded file is corrupt: its SHA-256 fingerprint does not match the catalog, so nothing was installed"
                    .into(),
                "It was probably damaged on the way. Try again.".into(),
            ),
            NotInCatalog { model } => (format!("{model} is no longer in the catalog"), "Pick another model.".into()),
            DiskFull => {
                ("The disk is full".into(), "Free some space, then try again; what was downloaded is kept.".into())
            }
            File { what } => (
                format!("localbrain could not use the model's file ({what})"),
                "Check that the models folder exists and can be written, then try again.".into(),
            ),
            Record => (
                "localbrain could not record the download in its database".into(),
                "Try again; if it happens again, the server's log says why.".into(),
            ),
            Crashed => (
                "The download stopped unexpectedly (an internal error; it is in the server's log)".into(),
                "Try again.".into(),
            ),
        };
        Said { what, todo }
    }
}
