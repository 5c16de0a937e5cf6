//! `config shaper` options of `mode stochastic` as the model reads them, and their conversion
//! into the shaper core's configuration.

use moat::config::{from_uci, ShaperMode, StochasticParams};
use moat::shaper::{Mode, SECOND};

fn load(text: &str) -> Result<moat::config::Loaded, Vec<moat::config::Diagnostic>> {
    let pkg = moat::config::uci::parse("moat.conf", text).expect("valid UCI");
    from_uci("moat.conf", &pkg)
}

#[test]
fn stochastic_defaults_and_explicit_values() {
    let l = load("config shaper 's'\n\toption mode 'stochastic'\n\toption rate '3'\n").unwrap();
    let ShaperMode::Stochastic(p) = &l.model.shapers[0].mode else { panic!() };
    assert_eq!(
        *p,
        StochasticParams {
            rate: 3,
            decoys: 6,
            budget_mb: 50,
            decoy_rate: 3,
            decoy_duration: 20,
            idle_gap: 5,
            pace: 100,
            pace_window: 3600
        }
    );

    let l = load(
        "config shaper 's'\n\toption mode 'stochastic'\n\toption rate '40'\n\toption decoys '12'\n\toption budget '200'\n\
         \toption decoy_rate '8'\n\toption decoy_duration '30'\n\toption idle_gap '10'\n\
         \toption pace '250'\n\toption pace_window '1800'\n",
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let ShaperMode::Stochastic(p) = &l.model.shapers[0].mode else { panic!() };
    assert_eq!(
        *p,
        StochasticParams {
            rate: 40,
            decoys: 12,
            budget_mb: 200,
            decoy_rate: 8,
            decoy_duration: 30,
            idle_gap: 10,
            pace: 250,
            pace_window: 1800
        }
    );
    let c = moat::daemon::engine::shaper_config(&l.model.shapers[0].mode, 1408);
    let Mode::Stochastic(s) = c.mode else { panic!() };
    assert_eq!((s.decoys_per_hour, s.rate_cap, s.budget_bytes_per_day), (12, 40, 200_000_000));
    assert_eq!((s.default_rate, s.default_duration_s, s.idle_gap), (8, 30, 10 * SECOND));
    assert_eq!((s.pace_percent, s.pace_window), (250, 1800 * SECOND));
}

#[test]
fn stochastic_errors_name_line_and_option() {
    let cases: &[(&str, usize, &str, &str)] = &[
        ("\toption decoys '361'\n", 4, "decoys", "0-360"),
        ("\toption budget '-1'\n", 4, "budget", "MB per day"),
        ("\toption decoy_rate '11'\n", 4, "decoy_rate", "above the rate cap 10"),
        ("\toption decoy_duration '0'\n", 4, "decoy_duration", "1-3600"),
        ("\toption decoys '60'\n\toption decoy_duration '60'\n", 5, "decoy_duration", "do not fit"),
        ("\toption idle_gap '5;reboot'\n", 4, "idle_gap", "idle gap"),
        ("\toption pace '1001'\n", 4, "pace", "0-1000 seconds of decoy per 100 s of real activity"),
        ("\toption pace_window '59'\n", 4, "pace_window", "60-86400 seconds"),
        ("\toption pase '100'\n", 4, "pase", "did you mean 'pace'?"),
    ];
    for (extra, line, opt, msg) in cases {
        let text = format!("config shaper 's'\n\toption mode 'stochastic'\n\toption rate '10'\n{extra}");
        let errs = load(&text).expect_err(extra);
        assert!(
            errs.iter().any(|d| d.line == *line && d.option.as_deref() == Some(opt) && d.message.contains(msg)),
            "{extra}: {errs:?}"
        );
    }
    // stochastic-only options on a constant shaper are flagged, not silently used
    let l = load("config shaper 'c'\n\toption mode 'constant'\n\toption rate '10'\n\toption decoys '3'\n").unwrap();
    assert!(l.warnings.iter().any(|w| w.option.as_deref() == Some("decoys")), "{:?}", l.warnings);
}

#[test]
fn constant_converts_with_a_bounded_queue() {
    let l = load("config shaper 'c'\n\toption mode 'constant'\n\toption rate '20'\n").unwrap();
    let c = moat::daemon::engine::shaper_config(&l.model.shapers[0].mode, 1408);
    let Mode::Constant(k) = c.mode else { panic!() };
    assert_eq!((k.rate, k.queue_limit), (20, 40));
}
