//! Helpers for a plugin's own configuration table (the TOML under its entry in `vm.toml`).
//!
//! [`parse`] refuses keys the target type does not read (with or without
//! `#[serde(deny_unknown_fields)]`), and every error it returns starts by naming the key path:
//! ``unknown key `a.b` `` or ``key `a.b`: <what is wrong>``. The host looks that path up in
//! `vm.toml` to report the file, line and column.

use crate::error::VmError;
use serde::de::DeserializeOwned;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// Parses a plugin's TOML table into `T`; unknown keys are refused, errors name the key.
pub fn parse<T: DeserializeOwned>(toml_text: &str) -> Result<T, VmError> {
    let de = toml::Deserializer::parse(toml_text).map_err(|e| error(toml_text, &e))?;
    let mut unknown = None;
    let value = serde_ignored::deserialize(de, |p| {
        unknown.get_or_insert_with(|| path_text(&p));
    })
    .map_err(|e| error(toml_text, &e))?;
    match unknown {
        Some(key) => Err(VmError::config(format!("unknown key `{key}`"))),
        None => Ok(value),
    }
}

/// Accepts only an empty table: for plugins that take no configuration.
pub fn expect_no_keys(toml_text: &str) -> Result<(), VmError> {
    let table: toml::Table = toml::from_str(toml_text).map_err(|e| error(toml_text, &e))?;
    match table.keys().next() {
        None => Ok(()),
        Some(k) => Err(VmError::config(format!("unknown key `{k}`: this plugin takes no configuration"))),
    }
}

/// The key path an error message from [`parse`] starts with, if any.
pub fn key_of_message(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown key `").or_else(|| message.strip_prefix("key `"))?;
    rest.split_once('`').map(|(key, _)| key)
}

/// A TOML error reworded to start with the key it is about (found from its span in `text`).
fn error(text: &str, e: &toml::de::Error) -> VmError {
    let msg = e.message().trim_end();
    let missing = msg.starts_with("missing field ");
    // A missing field's span is its table's; any other error's may be the key's name.
    let key = e.span().and_then(|s| key_at(text, s, !missing));
    let msg = match (msg.strip_prefix("unknown field `"), &key) {
        // serde names only the last segment; give the whole path.
        (Some(rest), Some(key)) => format!("unknown key `{key}`{}", rest.split_once('`').map_or("", |r| r.1)),
        (Some(rest), None) => format!("unknown key `{rest}"),
        (None, _) if missing => {
            let what = msg.replacen("missing field", "missing key", 1);
            match key {
                Some(table) => format!("{what} in `{table}`"),
                None => what,
            }
        }
        (None, Some(key)) => format!("key `{key}`: {msg}"),
        (None, None) => msg.to_string(),
    };
    VmError::config(msg)
}

/// The dotted path of the innermost key that `span` (an error's place in `text`) is about: the
/// key whose value covers it, or for `with_names` also one whose name starts there. (A `[table]`
/// header's value span is the header alone, so tables are searched whatever their span.)
fn key_at(text: &str, span: Range<usize>, with_names: bool) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find_in_table(root.get_ref(), &span, with_names, &mut path).then(|| path.join("."))
}

fn find_in_table(table: &DeTable<'_>, span: &Range<usize>, with_names: bool, path: &mut Vec<String>) -> bool {
    table.iter().any(|(k, v)| {
        let here = (with_names && k.span().contains(&span.start)) || covers(v.span(), span);
        path.push(k.get_ref().to_string());
        let found = find_in_value(v.get_ref(), span, with_names, path) || here;
        if !found {
            path.pop();
        }
        found
    })
}

fn find_in_value(value: &DeValue<'_>, span: &Range<usize>, with_names: bool, path: &mut Vec<String>) -> bool {
    match value {
        DeValue::Table(t) => find_in_table(t, span, with_names, path),
        DeValue::Array(a) => a.iter().enumerate().any(|(i, v)| {
            path.push(i.to_string());
            let found = find_in_value(v.get_ref(), span, with_names, path) || covers(v.span(), span);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

fn covers(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// A serde_ignored path as dotted keys, without its markers for `Option` and newtypes.
fn path_text(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(path_text(parent), &index.to_string()),
        Path::Map { parent, key } => join(path_text(parent), key),
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            path_text(parent)
        }
    }
}

fn join(parent: String, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Lacks `deny_unknown_fields` on purpose: `parse` must refuse unknown keys anyway.
    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default)]
    struct Lenient {
        seed: u64,
        inner: Inner,
        list: Vec<Inner>,
        maybe: Option<Inner>,
    }

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default)]
    struct Inner {
        n: u32,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        speed: u32,
        inner: Option<StrictInner>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct StrictInner {
        n: u32,
    }

    fn err<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        let e = parse::<T>(text).expect_err(text);
        assert_eq!(e.kind, crate::ErrorKind::Config);
        e.message().to_string()
    }

    #[test]
    fn good_tables_parse() {
        let v: Lenient = parse("seed = 7\ninner = { n = 1 }\n[[list]]\nn = 2\n[maybe]\nn = 3\n").unwrap();
        assert_eq!(v.seed, 7);
        assert_eq!(v.list, [Inner { n: 2 }]);
        assert_eq!(v.maybe, Some(Inner { n: 3 }));
        assert_eq!(parse::<Lenient>("").unwrap(), Lenient::default());
    }

    #[test]
    fn unknown_keys_are_refused_without_deny_unknown_fields() {
        assert_eq!(err::<Lenient>("sede = 42"), "unknown key `sede`");
        assert_eq!(err::<Lenient>("[inner]\nm = 1"), "unknown key `inner.m`");
        assert_eq!(err::<Lenient>("[[list]]\nn = 1\n[[list]]\nx = 1"), "unknown key `list.1.x`");
        assert_eq!(err::<Lenient>("maybe = { q = 1 }"), "unknown key `maybe.q`");
    }

    #[test]
    fn unknown_keys_with_deny_unknown_fields_name_the_whole_path() {
        assert_eq!(err::<Strict>("speed = 1\nsped = 2"), "unknown key `sped`, expected `speed` or `inner`");
        assert_eq!(
            err::<Strict>("speed = 1\ninner = { n = 1, m = 2 }"),
            "unknown key `inner.m`, expected `n`"
        );
        assert_eq!(err::<Strict>("inner = { n = 1 }"), "missing key `speed`");
        assert_eq!(err::<Strict>("speed = 1\n[inner]\n"), "missing key `n` in `inner`");
    }

    #[test]
    fn type_errors_name_the_key() {
        assert_eq!(err::<Lenient>("seed = \"x\""), "key `seed`: invalid type: string \"x\", expected u64");
        assert_eq!(
            err::<Lenient>("[inner]\nn = -1"),
            "key `inner.n`: invalid value: integer `-1`, expected u32"
        );
        assert_eq!(
            err::<Lenient>("list = [{ n = 1 }, { n = true }]").split(':').next(),
            Some("key `list.1.n`")
        );
    }

    #[test]
    fn key_of_message_reads_the_path_back() {
        assert_eq!(key_of_message("unknown key `a.b`, expected `c`"), Some("a.b"));
        assert_eq!(key_of_message("key `seed`: invalid type"), Some("seed"));
        assert_eq!(key_of_message("missing key `n`"), None);
    }

    #[test]
    fn no_keys() {
        assert!(expect_no_keys("").is_ok());
        assert_eq!(
            expect_no_keys("x = 1").unwrap_err().message(),
            "unknown key `x`: this plugin takes no configuration"
        );
    }
}
