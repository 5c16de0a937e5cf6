// Included (`include!`), not a module: by src/json/value_tests.rs and fuzz/fuzz_targets/rpc_input.rs,
// the two differential checks of the JSON reader against serde_json (a dev-dependency, so it cannot
// be in the library). Needs `Value` and `serde_json` in scope.

/// Whether our reader's value `a` is the one serde_json read, `b`.
fn same(a: &Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (Value::Null, serde_json::Value::Null) => true,
        (Value::Bool(x), serde_json::Value::Bool(y)) => x == y,
        // serde_json's default float parsing is not correctly rounded (no `float_roundtrip`): allow an ulp or so.
        (Value::Number(n), serde_json::Value::Number(m)) => match (n.parse::<f64>(), m.as_f64()) {
            _ if m.as_u64().is_some() => n.parse::<u64>().ok() == m.as_u64(),
            (Ok(a), Some(b)) => a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15,
            _ => false,
        },
        (Value::String(x), serde_json::Value::String(y)) => x == y,
        (Value::Array(x), serde_json::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), serde_json::Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}
