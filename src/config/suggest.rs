//! "Did you mean …": the known name closest to a misspelt one, by edit distance.

/// Edit distance between `a` and `b` (optimal string alignment: insertions, deletions,
/// substitutions and transpositions of adjacent characters each cost 1), ignoring ASCII case.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // d[i][j]: distance between a[..i] and b[..j]; three rows are enough for transpositions.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo: at most 1 edit
/// for words of up to 4 characters, 2 for longer ones. Ties go to the earlier candidate.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    let (best, d) = candidates.iter().map(|&c| (c, edit_distance(word, c))).min_by_key(|&(_, d)| d)?;
    (d <= limit).then_some(best)
}

/// `; did you mean 'x'?` for the closest candidate, or nothing.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates).map(|c| format!("; did you mean '{c}'?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("shaper", "shaper"), 0);
        assert_eq!(edit_distance("shapper", "shaper"), 1);
        assert_eq!(edit_distance("devices", "device"), 1);
        assert_eq!(edit_distance("rotue", "route"), 1, "a transposition is one edit");
        assert_eq!(edit_distance("Device", "device"), 0, "case is ignored");
        assert_eq!(edit_distance("", "mac"), 3);
        assert_eq!(edit_distance("colour", "mac"), 6);
    }

    #[test]
    fn suggestions_only_for_likely_typos() {
        let device = ["name", "mac", "route", "shaper", "enabled"];
        assert_eq!(closest("shapper", &device), Some("shaper"));
        assert_eq!(closest("macs", &device), Some("mac"));
        assert_eq!(closest("enable", &device), Some("enabled"));
        assert_eq!(closest("colour", &device), None);
        assert_eq!(closest("mtu", &device), None, "3 letters: one edit at most");
        assert_eq!(did_you_mean("tunel", &["moat", "tunnel", "shaper", "device"]), "; did you mean 'tunnel'?");
        assert_eq!(did_you_mean("frob", &["moat", "tunnel", "shaper", "device"]), "");
    }
}
