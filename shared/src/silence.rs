//! Label matchers, as Alertmanager's: what a silence selects.

use crate::alert::{MatchOp, Matcher, Silence};
use std::collections::BTreeMap;

/// A matcher ready to test labels. Regexes are anchored at both ends.
#[derive(Debug, Clone)]
pub struct Compiled {
    name: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String, bool),
    Regex(regex::Regex, bool),
}

pub fn compile(matcher: &Matcher) -> Result<Compiled, regex::Error> {
    let test = match matcher.op {
        MatchOp::Equal => Test::Equal(matcher.value.clone(), true),
        MatchOp::NotEqual => Test::Equal(matcher.value.clone(), false),
        MatchOp::Regex | MatchOp::NotRegex => {
            let regex = regex::RegexBuilder::new(&format!("^(?:{})$", matcher.value)).size_limit(1 << 20).build()?;
            Test::Regex(regex, matcher.op == MatchOp::Regex)
        }
    };
    Ok(Compiled { name: matcher.name.clone(), test })
}

impl Compiled {
    /// A label that is absent reads as empty, as in Alertmanager.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match &self.test {
            Test::Equal(wanted, equal) => (value == wanted) == *equal,
            Test::Regex(regex, positive) => regex.is_match(value) == *positive,
        }
    }
}

/// Whether every matcher of `silence` matches `labels` (its time window aside). A matcher
/// that does not compile (refused at ingest, so never stored) matches nothing.
pub fn selects(silence: &Silence, labels: &BTreeMap<String, String>) -> bool {
    silence.matchers.iter().all(|matcher| compile(matcher).is_ok_and(|compiled| compiled.matches(labels)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher { name: name.into(), op, value: value.into() }
    }

    #[test]
    fn operators_match_as_alertmanager_does() {
        let labels: BTreeMap<String, String> =
            [("rule".to_owned(), "worker_overloaded".to_owned()), ("hardware".to_owned(), "cuda".to_owned())].into();
        let check = |m: Matcher| compile(&m).expect("compiles").matches(&labels);
        assert!(check(matcher("rule", MatchOp::Equal, "worker_overloaded")));
        assert!(!check(matcher("rule", MatchOp::NotEqual, "worker_overloaded")));
        assert!(check(matcher("hardware", MatchOp::Regex, "cuda|rocm")));
        assert!(!check(matcher("hardware", MatchOp::Regex, "cud")), "anchored");
        assert!(check(matcher("hardware", MatchOp::NotRegex, "cpu")));
        assert!(check(matcher("model", MatchOp::Equal, "")), "absent reads as empty");
        assert!(compile(&matcher("x", MatchOp::Regex, "(")).is_err());
    }
}
