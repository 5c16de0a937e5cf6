//! The `moat` command: `moat run` (the daemon), `moat check`, …

use std::process::ExitCode;

const USAGE: &str = "usage: moat <command> [options]

commands:
  check [--config FILE] [--facts FILE]
                          validate the configuration and print the plan it would apply
                          (interfaces are probed read-only, or read from a facts file)
  help                    show this text
  version                 print the version

The configuration file defaults to /etc/config/moat.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("version") | Some("--version") | Some("-V") => {
            println!("moat {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &[String]) -> ExitCode {
    let mut config = "/etc/config/moat".to_string();
    let mut facts_file: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" | "--facts" => match it.next() {
                Some(f) if a == "--facts" => facts_file = Some(f.clone()),
                Some(f) => config = f.clone(),
                None => {
                    eprintln!("moat check: {a} needs a file\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("moat check: unknown argument '{other}'\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let report = moat::model::check_file(&config);
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    let loaded = match report.into_result() {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("moat check: {config}: {} error(s)", errors.len());
            return ExitCode::from(1);
        }
    };
    let facts = match &facts_file {
        Some(f) => match std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}")).and_then(|t| moat::facts::Facts::parse(f, &t)) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("moat check: facts: {e}");
                return ExitCode::from(2);
            }
        },
        None => moat::facts::Facts::probe(&moat::plan::interface_names(&loaded.model)),
    };
    match moat::plan::build(&loaded.model, &facts) {
        Ok(plan) => {
            print!("{}", plan.render());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {config}: {e}");
            }
            eprintln!("moat check: {config}: {} error(s)", errors.len());
            ExitCode::from(1)
        }
    }
}
