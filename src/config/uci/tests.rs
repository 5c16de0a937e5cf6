//! Unit tests of the UCI reader (the libuci conformance vectors are in `tests/uci_vectors.rs`).

use super::reader::djbhash;
use super::*;
use crate::shaper::rng::{Rng as _, SeededRng};

#[test]
fn basic_sections_options_lists() {
    let p = parse(
        "t",
        "config moat 'main'\n\toption enabled '1'\n\tlist lan_device 'br-lan'\n\tlist lan_device \"br-guest\"\n\nconfig device\n\toption name 'Kitchen speaker' # comment\n",
    )
    .unwrap();
    assert_eq!(p.sections.len(), 2);
    assert_eq!(p.address(0), "main");
    assert_eq!(p.address(1), "@device[0]");
    let lan = p.sections[0].get("lan_device").unwrap();
    assert_eq!(lan.values().iter().map(|v| v.text.as_str()).collect::<Vec<_>>(), ["br-lan", "br-guest"]);
    assert_eq!(p.sections[1].get("name").unwrap().values()[0].text, "Kitchen speaker");
    assert_eq!(p.sections[1].get("name").unwrap().line, 7);
}

#[test]
fn unterminated_quote_names_line() {
    let e = parse("f", "config a 'x'\n\toption b 'oops\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().starts_with("f:2: "));
    assert!(e.message.contains("expected a closing '"));
}

fn pkg(text: &[u8]) -> Package {
    parse_bytes("t", text).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &[u8]) -> ParseError {
    parse_bytes("t", text).expect_err("must be rejected")
}

// Behaviours below come from reading libuci's parser (file.c/list.c); the vectors cover the rest.

#[test]
fn semicolon_separates_commands_after_a_quoted_argument() {
    let p = pkg(b"config a 'n1';option x 'v';list l w\n");
    assert_eq!(p.show("c"), "c.n1=a\nc.n1.x='v'\nc.n1.l='w'\n");
}

#[test]
fn one_letter_keywords_are_accepted() {
    let p = pkg(b"c a n1\n\to x 1\n\tl y 2\np cfg\n");
    assert_eq!(p.show("c"), "c.n1=a\nc.n1.x='1'\nc.n1.y='2'\n");
}

#[test]
fn changing_a_value_moves_the_option_to_the_end() {
    let p = pkg(b"config a n1\n\toption x 1\n\toption y 2\n\toption x 3\n\toption y 2\n");
    assert_eq!(p.show("c"), "c.n1=a\nc.n1.y='2'\nc.n1.x='3'\n");
    assert_eq!(p.sections[0].get("x").unwrap().line, 4);
}

#[test]
fn empty_option_value_changes_nothing() {
    let p = pkg(b"config a n1\n\toption x 1\n\toption x ''\n\toption x\n");
    assert_eq!(p.show("c"), "c.n1=a\nc.n1.x='1'\n");
}

#[test]
fn redeclarations_are_merged_as_libuci_does_and_their_lines_kept() {
    let once = pkg(b"config a 'n1'\n\toption x '1'\n\toption y '2'\n");
    let twice = pkg(b"config a 'n1'\n\toption x '1'\nconfig b\nconfig a 'n1'\n\toption y '2'\nconfig a 'n1'\n");
    assert_eq!(twice.sections[0].redeclared, [4, 6]);
    assert_eq!(twice.sections[1].redeclared, Vec::<usize>::new());
    assert!(once.sections[0].redeclared.is_empty());
    assert_eq!(twice.show("c"), "c.n1=a\nc.n1.x='1'\nc.n1.y='2'\nc.@b[0]=b\n", "merged, as libuci does");
}

#[test]
fn named_section_of_another_type_is_an_error() {
    let e = err(b"config a n1\nconfig b n1\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("different type"), "{e}");
}

#[test]
fn anonymous_sections_have_libuci_internal_names() {
    // libuci names the first anonymous section of type `a` cfg02 + djb2("a") % 65536 = cfg02e5a6... and a
    // later named declaration with that name merges into it.
    let h = djbhash(!0, b"a") % (1 << 16);
    let name = format!("cfg02{h:04x}");
    let text = format!("config a\n\toption x 1\nconfig a {name}\n\toption y 2\n");
    let p = pkg(text.as_bytes());
    assert_eq!(p.sections.len(), 1);
    assert_eq!(p.show("c"), "c.@a[0]=a\nc.@a[0].x='1'\nc.@a[0].y='2'\n");
}

#[test]
fn nul_byte_truncates_the_line_like_fgets() {
    // The NUL drops the rest of line 2 (" ignored\n") and line 3 is appended where the NUL was, so the
    // two form one statement: `option x v# c`, whose `#` starts a comment.
    let p = pkg(b"config a n1\n\toption x v\0 ignored\n# c\n\toption y w\n");
    assert_eq!(p.show("c"), "c.n1=a\nc.n1.x='v'\nc.n1.y='w'\n");
    assert_eq!(p.sections[0].get("y").unwrap().line, 4);
    // Joined with a following statement instead, the result has too many arguments.
    let e = err(b"config a n1\n\toption x v\0 ignored\n\toption y w\n");
    assert!(e.message.starts_with("too many arguments"), "{e}");
    // uci counts only the newline-terminated reads: line 3 here, as the truncated line 2 is not counted.
    assert_eq!(e.line, 2);
    // With the NUL inside quotes the quote is never closed.
    let e = err(b"config a n1\n\toption x 'a\0b'\n");
    assert_eq!((e.line, e.byte), (1, 12));
}

#[test]
fn many_nul_truncated_lines_are_refused_like_a_failed_realloc() {
    // Each NUL-cut line doubles libuci's buffer: 40 of them would ask for 2^45 bytes.
    let mut text = b"config a n1\n".to_vec();
    for _ in 0..40 {
        text.extend_from_slice(b"\t\0\n");
    }
    assert!(err(&text).message.starts_with("out of memory"));
    // A few are fine (and change nothing).
    let p = pkg(b"config a n1\n\t\0\n\t\0\n\toption x 1\n");
    assert_eq!(p.show("c"), "c.n1=a\nc.n1.x='1'\n");
}

#[test]
fn errors_name_file_line_and_expectation() {
    let e = parse("/etc/config/moat", "config moat main\n\toption enabled 1 2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/config/moat:2: too many arguments (expected end of line; quote values that contain spaces)"
    );
    let e = parse("f", "config moat main\n\toption bad-name 1\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("expected letters, digits and _"));
}

#[test]
fn invalid_utf8_values_are_kept_exactly() {
    let p = pkg(b"config a n1\n\toption x '\xff\xfe'\n");
    let v = &p.sections[0].get("x").unwrap().values()[0].clone();
    assert_eq!(v.raw, b"\xff\xfe");
    assert!(!v.is_utf8());
    assert_eq!(p.show_bytes("c"), b"c.n1=a\nc.n1.x='\xff\xfe'\n");
}

/// The generators' draws, from the shaper's deterministic SplitMix64 (one PRNG for every test).
struct Rng(SeededRng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SeededRng::new(seed))
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u32) as usize
    }
    fn pick<'a>(&mut self, xs: &'a [&'a [u8]]) -> &'a [u8] {
        xs[self.below(xs.len())]
    }
}

/// A random argument: unquoted text, quoted pieces, escapes, comments, `;` and hostile bytes.
fn gen_word(r: &mut Rng, out: &mut Vec<u8>) {
    const PLAIN: &[u8] = b"abcxyz019_-.:/@$()[]{}<>=+*~!?";
    const HOSTILE: &[&[u8]] = &[b"\0", b"\xff", b"\xc3\xa9", b"\x80", b"\x0b", b"\x0c", b"\r", b"\n", b"\t", b" "];
    for _ in 0..1 + r.below(4) {
        match r.below(30) {
            0..=7 | 15..=29 => {
                for _ in 0..1 + r.below(6) {
                    out.push(PLAIN[r.below(PLAIN.len())]);
                }
            }
            8..=11 => {
                let q = if r.below(2) == 0 { b'\'' } else { b'"' };
                out.push(q);
                for _ in 0..r.below(8) {
                    match r.below(12) {
                        0 => out.extend_from_slice(r.pick(HOSTILE)),
                        1 => out.push(b'\\'),
                        2 => out.push(if q == b'\'' { b'"' } else { b'\'' }),
                        3 => out.extend_from_slice(b"#;"),
                        _ => out.push(PLAIN[r.below(PLAIN.len())]),
                    }
                }
                if r.below(25) != 0 {
                    out.push(q);
                }
            }
            12 => out.extend_from_slice(r.pick(&[b"\\\n", b"\\\r\n", b"\\'", b"\\\\", b"\\"])),
            13 => out.extend_from_slice(r.pick(&[b"#", b"# c", b";"])),
            _ => out.extend_from_slice(r.pick(HOSTILE)),
        }
    }
}

/// A random UCI-ish file: mostly well-formed statements with random arguments, plus noise.
fn gen_file(r: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let types: &[&[u8]] = &[b"a", b"b", b"device", b"wifi-device", b"t'q", b"x#y"];
    if r.below(8) != 0 {
        out.extend_from_slice(r.pick(&[b"config a\n", b"config b 'n0'\n", b"c device\r\n"]));
    }
    for _ in 0..r.below(8) {
        if r.below(4) == 0 {
            out.extend_from_slice(r.pick(&[b" ", b"\t", b"  \t"]));
        }
        match r.below(12) {
            0..=2 => {
                out.extend_from_slice(r.pick(&[b"config ", b"config\t", b"c "]));
                if r.below(3) == 0 {
                    gen_word(r, &mut out);
                } else {
                    out.extend_from_slice(r.pick(types));
                }
                if r.below(2) == 0 {
                    out.extend_from_slice(r.pick(&[b" 'n1'", b" n2", b" ''", b" \"n1\"", b" cfg02e5a6", b" n-3"]));
                }
            }
            3..=8 => {
                out.extend_from_slice(r.pick(&[b"option ", b"list ", b"o ", b"l ", b"option\t"]));
                out.extend_from_slice(r.pick(&[
                    b"x",
                    b"y",
                    b"l",
                    b"'x'",
                    b"\"y\"",
                    b"x",
                    b"y",
                    b"l",
                    b"bad-name",
                    b"",
                ]));
                for _ in 0..[0, 1, 1, 1, 1, 1, 1, 2][r.below(8)] {
                    out.push(b' ');
                    gen_word(r, &mut out);
                }
            }
            9 => out.extend_from_slice(r.pick(&[b"package cfg", b"package", b"p x y", b"# comment 'x"])),
            10 => gen_word(r, &mut out),
            _ => {}
        }
        if r.below(15) == 0 {
            out.extend_from_slice(b"; option z 'q'");
        }
        out.extend_from_slice(r.pick(&[b"\n", b"\n", b"\n", b"\r\n", b" \n", b"\\\n", b""]));
    }
    out
}

/// Property test: 20,000 random inputs never panic; parsing is deterministic; errors point into the file;
/// and every accepted package re-reads identically from its own export (when libuci's export can).
#[test]
fn random_inputs_never_panic_and_exports_reread_identically() {
    let mut r = Rng::new(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut rejected, mut roundtrips) = (0, 0, 0);
    let mut stats: std::collections::BTreeMap<String, usize> = Default::default();
    for case in 0..20_000 {
        let input = gen_file(&mut r);
        let lines = input.iter().filter(|&&b| b == b'\n').count();
        match parse_bytes("fuzz", &input) {
            Ok(p) => {
                accepted += 1;
                assert_eq!(parse_bytes("fuzz", &input).as_ref(), Ok(&p), "case {case}: not deterministic");
                let _ = p.show_bytes("cfg");
                if p.export_rereadable() {
                    let again = parse_bytes("export", &p.export_bytes("cfg")).unwrap_or_else(|e| {
                        panic!("case {case}: export of {:?} does not parse: {e}", String::from_utf8_lossy(&input))
                    });
                    assert!(
                        again.same_content(&p),
                        "case {case}: {:?}\nexport:\n{}\nre-read:\n{}",
                        String::from_utf8_lossy(&input),
                        p.export("cfg"),
                        again.export("cfg")
                    );
                    roundtrips += 1;
                }
            }
            Err(e) => {
                rejected += 1;
                *stats.entry(e.message.split(" (").next().unwrap_or("").to_string()).or_insert(0) += 1;
                assert!(e.line <= lines, "case {case}: error line {} beyond {lines} lines", e.line);
                assert!(e.to_string().starts_with("fuzz:"));
            }
        }
    }
    if std::env::var_os("UCI_PROP_STATS").is_some() {
        eprintln!("{stats:#?}");
    }
    // The generator must exercise both outcomes substantially, or the property says little.
    assert!(accepted > 4_000 && rejected > 4_000 && roundtrips > 3_000, "{accepted} {rejected} {roundtrips}");
    eprintln!("20000 cases: {accepted} accepted ({roundtrips} export round-trips checked), {rejected} rejected");
}

/// A random canonical package (what libuci could hold): distinct section names, distinct option names
/// per section, non-empty single values, list items of any bytes but NUL.
fn gen_package(r: &mut Rng) -> Package {
    const TYPES: &[&str] = &["a", "device", "wifi-device", "zone", "x.y", "t@1"];
    let mut sections: Vec<Section> = Vec::new();
    for si in 0..r.below(5) {
        let name = if r.below(2) == 0 { Some(format!("s{si}_{}", r.below(100))) } else { None };
        let mut options: Vec<UciOption> = Vec::new();
        for oi in 0..r.below(5) {
            let val = |r: &mut Rng, nonempty: bool| {
                let mut v: Vec<u8> = (0..r.below(12)).map(|_| (r.below(255) + 1) as u8).collect();
                if nonempty && v.is_empty() {
                    v.push(b'x');
                }
                Value::from_bytes(v, 0)
            };
            let value = if r.below(3) == 0 {
                OptionValue::List((0..1 + r.below(3)).map(|_| val(r, false)).collect())
            } else {
                OptionValue::Single(val(r, true))
            };
            options.push(UciOption { name: format!("o{oi}"), line: 0, value });
        }
        sections.push(Section {
            stype: TYPES[r.below(TYPES.len())].to_string(),
            name,
            line: 0,
            options,
            redeclared: Vec::new(),
        });
    }
    Package { sections }
}

/// Property test: a random package (values of arbitrary bytes: quotes, backslashes, newlines, CR, `#`,
/// `;`, high bytes) written in uci's export format reads back as the same package.
#[test]
fn generated_packages_survive_export_and_reparse() {
    let mut r = Rng::new(0x2545_f491_4f6c_dd1d);
    for case in 0..5_000 {
        let p = gen_package(&mut r);
        let text = p.export_bytes("cfg");
        let again = parse_bytes("gen", &text).unwrap_or_else(|e| panic!("case {case}: {e}\n{}", p.export("cfg")));
        assert!(again.same_content(&p), "case {case}:\n{}\nre-read as\n{}", p.export("cfg"), again.export("cfg"));
    }
}
