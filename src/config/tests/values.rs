//! Scalar syntaxes: durations, endpoints, core lists, component ids.

use std::time::Duration;

use crate::config::values::{EndpointRules, LISTEN, parse_endpoint};
use crate::config::{ComponentId, HostPort, parse_component_id, parse_cores, parse_duration};

#[test]
fn durations() {
    let cases = [
        ("5s", Duration::from_secs(5)),
        ("100ms", Duration::from_millis(100)),
        ("1m30s", Duration::from_secs(90)),
        ("2h", Duration::from_secs(7200)),
        ("500us", Duration::from_micros(500)),
        ("500\u{b5}s", Duration::from_micros(500)),
        ("500\u{3bc}s", Duration::from_micros(500)),
        ("10ns", Duration::from_nanos(10)),
        ("1.5s", Duration::from_millis(1500)),
        (".5s", Duration::from_millis(500)),
        ("1h2m3s4ms", Duration::from_millis(3_723_004)),
        ("+3s", Duration::from_secs(3)),
        ("0s", Duration::ZERO),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text), Ok(expected), "{text}");
    }
}

#[test]
fn bad_durations() {
    let cases = [
        ("5", "missing unit"),
        ("0", "missing unit"),
        ("", "empty"),
        ("-5s", "negative"),
        ("5 s", "unknown unit"),
        ("5sec", "unknown unit"),
        ("s", "is not a number"),
        ("1..5s", "is not a number"),
        ("5d", "unknown unit"),
        ("9999999999999h", "too long"),
    ];
    for (text, why) in cases {
        let message = parse_duration(text).expect_err(text);
        assert!(message.contains(why), "{text}: {message}");
        assert!(message.contains(&format!("`{text}`")), "{message}");
    }
}

fn hp(host: &str, port: u16) -> HostPort {
    HostPort { host: host.into(), port }
}

const BACKEND: EndpointRules = EndpointRules { listen: false, default_port: None };
const DEFAULTED: EndpointRules = EndpointRules { listen: false, default_port: Some(4317) };

#[test]
fn endpoints() {
    let cases = [
        ("localhost:4317", LISTEN, hp("localhost", 4317)),
        ("[::1]:4317", LISTEN, hp("::1", 4317)),
        ("0.0.0.0:4317", LISTEN, hp("0.0.0.0", 4317)),
        (":4317", LISTEN, hp("0.0.0.0", 4317)),
        ("127.0.0.1:0", LISTEN, hp("127.0.0.1", 0)),
        ("collector-1.example.com:65535", BACKEND, hp("collector-1.example.com", 65535)),
        ("collector", DEFAULTED, hp("collector", 4317)),
        ("[fe80::1]", DEFAULTED, hp("fe80::1", 4317)),
    ];
    for (text, rules, expected) in cases {
        assert_eq!(parse_endpoint(text, rules), Ok(expected), "{text}");
    }
    assert_eq!(hp("::1", 4317).to_string(), "[::1]:4317");
}

#[test]
fn bad_endpoints() {
    let cases = [
        ("localhost", LISTEN, "missing port"),
        ("localhost:", LISTEN, "missing port"),
        ("host:65536", LISTEN, "port must be"),
        ("host:+80", LISTEN, "port must be"),
        ("host:0", BACKEND, "port must be a number from 1"),
        (":4317", BACKEND, "missing host"),
        ("::1:4317", LISTEN, "in brackets"),
        ("[::1", LISTEN, "missing `]`"),
        ("[::1]x", LISTEN, "unexpected"),
        ("[nope]:1", LISTEN, "not an IPv6 address"),
        ("ho st:1", LISTEN, "not a valid host"),
        ("host/path:1", BACKEND, "not a valid host"),
    ];
    for (text, rules, why) in cases {
        let message = parse_endpoint(text, rules).expect_err(text);
        assert!(message.contains(why), "{text}: {message}");
    }
}

#[test]
fn cores() {
    assert_eq!(parse_cores("1"), Ok(vec![1]));
    assert_eq!(parse_cores("0-3"), Ok(vec![0, 1, 2, 3]));
    assert_eq!(parse_cores("0,2-3"), Ok(vec![0, 2, 3]));
    assert_eq!(parse_cores("3,0-1,1"), Ok(vec![0, 1, 3]));
    assert_eq!(parse_cores(" 0 , 2 - 3 "), Ok(vec![0, 2, 3]));
    assert_eq!(parse_cores("5-5"), Ok(vec![5]));
    for bad in ["3-1", "", "x", "1,", "-1", "1-", "1-2-3", "+1", "8192", "0-99999999999"] {
        assert!(parse_cores(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn component_ids() {
    let id = |kind: &str, name: Option<&str>| ComponentId { kind: kind.into(), name: name.map(Into::into) };
    assert_eq!(parse_component_id("otlp"), Ok(id("otlp", None)));
    assert_eq!(parse_component_id("load_balancing/a-b.c"), Ok(id("load_balancing", Some("a-b.c"))));
    assert_eq!(parse_component_id("otlp/a/b").ok(), None);
    assert_eq!(id("otlp", Some("x")).to_string(), "otlp/x");
    for bad in ["", "otlp/", "/x", "9p", "ot-lp", "otlp/a b"] {
        assert!(parse_component_id(bad).is_err(), "{bad:?}");
    }
}
