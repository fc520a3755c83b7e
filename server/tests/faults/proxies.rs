//! A proxy the download cannot use fails it at once, in words that name the proxy setting: a
//! value that is not a proxy address (which reqwest would ignore, going around the proxy the
//! person set), and a proxy that cannot be reached (a closed port, a name that does not
//! resolve), which asking again would not cure. The host itself is never asked.

use super::{Env, HOSTILE_SIZE, runtime};
use std::time::{Duration, Instant};
use testkit::{Fixture, RefusingPort, test_bytes};

/// `localbrain download` with `var` set to `value`: it must fail within a few seconds (the
/// product's retries would take minutes), its last line naming `var` and saying `words`.
fn fails_at_once_naming_the_setting(var: &str, value: &str, words: &str) {
    let rt = runtime();
    let data = test_bytes(HOSTILE_SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    let mut env = Env::new(&server, HOSTILE_SIZE);
    env.vars.push((var.into(), value.into()));
    let case = format!("{var}={value}");
    let started = Instant::now();
    let run = env.run(Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(10), "{case}: failed at once, not after retries");
    assert!(!run.status.success(), "{case}: the download cannot go on");
    let last_line = run.stderr.lines().last().unwrap_or_default();
    assert!(last_line.contains(var) && last_line.contains(words), "{case}: {}", run.stderr);
    assert!(!last_line.contains("gave up"), "{case}: {last_line}");
    assert!(server.file_requests().is_empty(), "{case}: the host was never asked directly");
    assert!(!env.target().exists(), "{case}: nothing installed");
}

#[test]
fn a_proxy_setting_that_is_not_a_proxy_address_fails_at_once_naming_it() {
    fails_at_once_naming_the_setting("HTTP_PROXY", "ftp://127.0.0.1:21", "not a proxy address");
    fails_at_once_naming_the_setting("ALL_PROXY", "not a proxy at all", "not a proxy address");
}

#[test]
fn a_proxy_at_a_closed_port_fails_at_once_naming_it() {
    let proxy = RefusingPort::new();
    fails_at_once_naming_the_setting("HTTP_PROXY", &proxy.url(""), "refused the connection");
}

#[test]
fn a_proxy_whose_name_does_not_resolve_fails_at_once_naming_it() {
    // RFC 6761: .invalid never resolves.
    fails_at_once_naming_the_setting("http_proxy", "http://proxy.localbrain-test.invalid:3128", "can't be found");
}
