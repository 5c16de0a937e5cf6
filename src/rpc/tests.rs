//! Plugin tests on a state directory and config of the test's own.

use super::*;
use serde_json::{json, Value};

/// A test's context; its directory is removed when the test ends (also when it fails).
struct Scratch(Context);

impl std::ops::Deref for Scratch {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.state_dir);
    }
}

fn ctx(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("moat-rpc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("leases"), "").unwrap();
    Scratch(Context {
        config: dir.join("moat"),
        state_dir: dir.clone(),
        sources: Sources { dnsmasq: dir.join("leases"), odhcpd: dir.join("none"), neighbours: false, lan: vec![] },
    })
}

fn obj(s: &str) -> Value {
    let v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"));
    assert!(v.is_object(), "{s}");
    v
}

#[test]
fn list_names_every_method_with_typed_arguments() {
    let v = obj(&list());
    assert_eq!(v["check"]["config"], "str");
    assert!(v["status"].as_object().unwrap().is_empty());
    assert_eq!(v.as_object().unwrap().len(), METHODS.len());
}

#[test]
fn hostile_input_gets_error_objects() {
    let c = ctx("hostile");
    for (m, input, code) in [
        ("nope", &b"{}"[..], "unknown_method"),
        ("status", b"{", "invalid_json"),
        ("status", b"[]", "not_an_object"),
        ("status", b"{\"x\":1}", "unknown_argument"),
        ("check", b"{\"config\":5}", "bad_argument"),
        ("series", b"\xff\xfe", "invalid_json"),
    ] {
        let v = obj(&call(&c, m, input));
        assert_eq!(v["code"], code, "{m} {input:?}: {v}");
        assert!(v["error"].is_string());
    }
    let big = format!("{{\"config\":\"{}\"}}", "a".repeat(input::MAX_INPUT));
    assert_eq!(obj(&call(&c, "check", big.as_bytes()))["code"], "too_large");
}

#[test]
fn check_reports_the_same_errors_as_the_model() {
    let c = ctx("check");
    let bad = "config device\n\toption name 'x'\n\tlist mac 'zz'\n";
    let v = obj(&call(&c, "check", serde_json::to_string(&json!({ "config": bad })).unwrap().as_bytes()));
    assert_eq!(v["ok"], false);
    let expected: Vec<String> = crate::config::check_bytes(&c.config.display().to_string(), bad.as_bytes())
        .errors
        .iter()
        .map(|d| d.to_string())
        .collect();
    let got: Vec<String> =
        v["errors"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, expected);
    assert!(!got.is_empty());
    // No staged text: the file itself (missing here) is checked.
    let v = obj(&call(&c, "check", b"{}"));
    assert_eq!(v["ok"], false);
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("cannot read"));
}

#[test]
fn status_without_daemon_and_with_a_status_file() {
    let c = ctx("status");
    let v = obj(&call(&c, "status", b""));
    assert_eq!(v["running"], false);
    std::fs::write(
        &c.config,
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg9'\n\toption dns '10.0.0.1'\n\
         config shaper 's'\n\toption mode 'constant'\n\toption rate '10'\n\
         config device 'cam'\n\toption name 'Cam'\n\tlist mac '02:00:00:00:00:01'\n\toption route 'vpn'\n\toption shaper 's'\n",
    )
    .unwrap();
    let st = format!(
        "{{\"pid\": {}, \"config\": \"x\", \"state\": \"running\", \"applied_at\": 5, \"last_error\": null,\
         \"tunnels\": [{{\"name\": \"vpn\", \"type\": \"wireguard\", \"device\": \"wg9\", \"up\": false}}],\
         \"devices\": [{{\"section\": \"cam\", \"name\": \"Cam\", \"macs\": [\"02:00:00:00:00:01\"], \"route\": \"vpn\",\
         \"mark\": 1, \"shaped\": true, \"state\": \"blocked (tunnel down)\"}}]}}",
        std::process::id()
    );
    std::fs::write(c.state_dir.join("status.json"), st).unwrap();
    std::fs::write(
        c.state_dir.join("series.json"),
        "{\"interval\":1,\"time\":9,\"devices\":{\"Cam\":{\"real\":[1,2],\"wire\":[5,5]}},\"tunnels\":{},\
         \"engine\":{\"queues\":[{\"label\":\"Cam\",\"real_bytes\":3,\"padding_bytes\":4,\"cover_bytes\":10,\"queue_drops\":1}]}}",
    )
    .unwrap();
    let v = obj(&call(&c, "status", b"{}"));
    assert_eq!(v["running"], true);
    let d = &v["devices"][0];
    assert_eq!(d["shaping_mode"], "constant");
    assert_eq!(d["counters"]["wire_bytes_up"], 17);
    assert_eq!(d["counters"]["queue_drops"], 1);
    assert!(d["blocked_reason"].as_str().unwrap().contains("tunnel 'vpn' is down"));
    assert!(v["tunnels"][0].get("handshake_age").is_some());
    let s = obj(&call(&c, "series", b"{\"name\":\"Cam\"}"));
    assert_eq!(s["devices"]["Cam"]["wire"], json!([5, 5]));
    assert!(s.get("engine").is_none());
    let s = obj(&call(&c, "series", b"{\"name\":\"other\"}"));
    assert!(s["devices"].as_object().unwrap().is_empty());
    let d = obj(&call(&c, "devices", b"{}"));
    assert_eq!(d["configured"][0]["section"], "cam");
    assert_eq!(d["configured"][0]["seen"], false);
}
