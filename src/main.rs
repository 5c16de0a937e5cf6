//! The `moat` command: `moat run` (the daemon), `moat check`, …

use std::process::ExitCode;

const USAGE: &str = "usage: moat <command> [options]

commands:
  check [--config FILE]   validate the configuration and print the plan it would apply
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
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => match it.next() {
                Some(f) => config = f.clone(),
                None => {
                    eprintln!("moat check: --config needs a file\n\n{USAGE}");
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
        eprintln!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    match report.into_result() {
        Ok(_loaded) => ExitCode::SUCCESS,
        Err(errors) => {
            eprintln!("moat check: {config}: {} error(s)", errors.len());
            ExitCode::from(1)
        }
    }
}
