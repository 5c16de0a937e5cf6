//! `moat rpc`: the rpcd exec plugin behind the ubus object `luci.moat`.
//!
//! rpcd's exec plugin contract: rpcd runs `/usr/libexec/rpcd/luci.moat list` once at start and
//! reads one JSON object from stdout mapping each method to its argument signature (an object of
//! argument name → example value whose JSON type is the argument's type); for a ubus call it
//! runs `luci.moat call METHOD`, writes the call's arguments as one JSON object on stdin, closes
//! stdin, and takes stdout as the reply, which must be one JSON object (anything else becomes
//! `UBUS_STATUS_INVALID_ARGUMENT`). The plugin script `exec`s `moat rpc "$@"`.
//!
//! Every answer here is one JSON object; failures are `{"error": MESSAGE, "code": CODE}`.
//!
//! JSON: the input is read with the crate's own small reader ([`crate::json::value`], fuzzed
//! against serde_json), not serde_json itself. Measured on mipsel (scripts/cross.sh, stripped
//! static, 2026-12-01): before this feature 528,132 bytes; with it and serde_json's `Value`
//! 702,932 (over the 700 KB goal); with the own reader 635,036 (serde_json cost 67,896 bytes);
//! 649,240 once `moat status --table` was added.
//! Methods: `status`, `devices`, `check`, `series` (see [`methods`]).

pub mod input;
pub mod methods;
pub mod table;

use std::path::PathBuf;

use crate::json::value::Value;

use crate::discover::Sources;

/// Paths the plugin reads (OpenWrt defaults, overridable by environment for tests).
#[derive(Debug, Clone)]
pub struct Context {
    /// Config file (`/etc/config/moat`; env `MOAT_CONFIG`).
    pub config: PathBuf,
    /// The daemon's state directory (`/var/run/moat`; env `MOAT_STATE_DIR`).
    pub state_dir: PathBuf,
    /// Discovery sources.
    pub sources: Sources,
}

impl Context {
    /// Defaults plus environment overrides.
    pub fn from_env() -> Context {
        let env = |k: &str, d: &str| std::env::var_os(k).map_or_else(|| PathBuf::from(d), PathBuf::from);
        Context {
            config: env("MOAT_CONFIG", "/etc/config/moat"),
            state_dir: env("MOAT_STATE_DIR", crate::daemon::DEFAULT_STATE_DIR),
            sources: Sources::from_env(),
        }
    }
}

/// The methods and their argument signatures, as `list` prints them.
pub const METHODS: &[(&str, &[(&str, &str)])] =
    &[("status", &[]), ("devices", &[]), ("check", &[("config", "str")]), ("series", &[("name", "str")])];

/// The `list` answer.
pub fn list() -> String {
    let m =
        METHODS.iter().map(|(name, args)| (*name, Value::object(args.iter().map(|(a, ex)| (*a, Value::from(*ex))))));
    Value::object(m).to_string()
}

/// An error object.
pub fn error(code: &str, message: &str) -> Value {
    crate::jobj! { "error" => message, "code" => code }
}

/// Answer `call METHOD` with the raw stdin bytes: always one JSON object.
pub fn call(ctx: &Context, method: &str, input: &[u8]) -> String {
    let Some((_, sig)) = METHODS.iter().find(|(m, _)| *m == method) else {
        return error(
            "unknown_method",
            &format!("unknown method {}", crate::json::string(&crate::config::printable(method))),
        )
        .to_string();
    };
    let allowed: Vec<&str> = sig.iter().map(|(a, _)| *a).collect();
    let args = match input::parse_args(input, &allowed) {
        Ok(a) => a,
        Err(e) => return error(e.code(), &e.to_string()).to_string(),
    };
    let r = match method {
        "status" => Ok(methods::status(ctx)),
        "devices" => Ok(methods::devices(ctx)),
        "check" => methods::check(ctx, &args),
        _ => methods::series(ctx, &args),
    };
    match r {
        Ok(v) => v.to_string(),
        Err(e) => error(e.code(), &e.to_string()).to_string(),
    }
}

/// The `moat rpc list|call METHOD` command; returns the exit code (0 whenever an answer was
/// printed, error objects included; 2 for usage errors).
pub fn main(args: &[String]) -> u8 {
    let ctx = Context::from_env();
    match args {
        [l] if l == "list" => {
            println!("{}", list());
            0
        }
        [c, method] if c == "call" => {
            let out = match input::read_limited(std::io::stdin().lock(), input::MAX_INPUT) {
                Ok(bytes) => call(&ctx, method, &bytes),
                Err(e) => error(e.code(), &e.to_string()).to_string(),
            };
            println!("{out}");
            0
        }
        _ => {
            eprintln!("usage: moat rpc list | moat rpc call METHOD  (arguments as a JSON object on stdin)");
            2
        }
    }
}

#[cfg(test)]
mod tests;
