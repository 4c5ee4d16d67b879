//! The serial device's configuration: its table in `vm.toml`.
//!
//! ```toml
//! output = "stdout"            # or "stderr", "none", or { file = "serial.log" }
//! input = "auto"               # or "stdin", "none"
//! ```

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, MapAccess, Visitor},
    ser::SerializeMap,
};
use std::{fmt, path::PathBuf};
use vm_plugin_api::VmError;

/// The device's configuration. Every key is optional; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialConfig {
    /// Where transmitted bytes go.
    pub output: OutputConfig,
    /// Where received bytes come from.
    pub input: InputConfig,
}

impl SerialConfig {
    /// Parses the device's TOML table.
    pub fn from_toml(toml_text: &str) -> Result<Self, VmError> {
        vm_plugin_api::config::parse(toml_text)
    }

    /// The configuration as a TOML table, in the form [`SerialConfig::from_toml`] reads.
    pub fn to_toml(&self) -> String {
        // Only strings and a one-key table: serialising cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

/// Where the bytes the guest writes to THR go.
///
/// In TOML: `"stdout"`, `"stderr"`, `"none"`, or `{ file = "path" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OutputConfig {
    /// The host's stdout, flushed at every byte: the guest console (the default).
    #[default]
    Stdout,
    /// The host's stderr.
    Stderr,
    /// Discarded.
    None,
    /// Appended to a file, created if missing. A relative path is relative to the directory of
    /// the vm.toml file (`DeviceContext::config_dir`).
    File(PathBuf),
}

/// Where the bytes the guest reads from RBR come from.
///
/// In TOML: `"auto"`, `"stdin"` or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputConfig {
    /// The host's stdin if no other serial device has it, else nothing (the default): the first
    /// serial device, the guest's console, reads stdin, as QEMU's `-nographic` connects it.
    #[default]
    Auto,
    /// The host's stdin, read on a background thread; an error if another device has it. One
    /// device per process can have it.
    Stdin,
    /// Nothing is ever received.
    None,
}

const OUTPUT_FORMS: &str = r#""stdout", "stderr", "none" or { file = "path" }"#;

impl<'de> Deserialize<'de> for OutputConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OutputVisitor)
    }
}

/// Hand-written so a bad value gets one message listing every accepted form, rather than toml's
/// enum wording ("wanted string or table").
struct OutputVisitor;

impl<'de> Visitor<'de> for OutputVisitor {
    type Value = OutputConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(OUTPUT_FORMS)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<OutputConfig, E> {
        match s {
            "stdout" => Ok(OutputConfig::Stdout),
            "stderr" => Ok(OutputConfig::Stderr),
            "none" => Ok(OutputConfig::None),
            other => Err(E::custom(format!("unknown output `{other}`: expected {OUTPUT_FORMS}"))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OutputConfig, A::Error> {
        let mut file: Option<PathBuf> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "file" {
                return Err(de::Error::custom(format!(
                    "unknown key `{key}`: expected {{ file = \"path\" }}"
                )));
            }
            file = Some(map.next_value()?);
        }
        match file {
            Some(path) if path.as_os_str().is_empty() => Err(de::Error::custom("`file` is empty")),
            Some(path) => Ok(OutputConfig::File(path)),
            None => Err(de::Error::custom("a table needs a `file` key: { file = \"path\" }")),
        }
    }
}

const INPUT_FORMS: &str = r#""auto", "stdin" or "none""#;

impl<'de> Deserialize<'de> for InputConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(InputVisitor)
    }
}

/// Hand-written for messages in the same style as `output`'s (toml's enum errors say only
/// "wanted string or table").
struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = InputConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(INPUT_FORMS)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<InputConfig, E> {
        match s {
            "auto" => Ok(InputConfig::Auto),
            "none" => Ok(InputConfig::None),
            "stdin" => Ok(InputConfig::Stdin),
            other => Err(E::custom(format!("unknown input `{other}`: expected {INPUT_FORMS}"))),
        }
    }
}

impl Serialize for InputConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            InputConfig::Auto => "auto",
            InputConfig::None => "none",
            InputConfig::Stdin => "stdin",
        })
    }
}

impl Serialize for OutputConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OutputConfig::Stdout => s.serialize_str("stdout"),
            OutputConfig::Stderr => s.serialize_str("stderr"),
            OutputConfig::None => s.serialize_str("none"),
            OutputConfig::File(path) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("file", &path.to_string_lossy())?;
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_plugin_api::ErrorKind;

    fn err(toml_text: &str) -> String {
        let e = SerialConfig::from_toml(toml_text).expect_err(toml_text);
        assert_eq!(e.kind, ErrorKind::Config);
        e.message().to_string()
    }

    #[test]
    fn empty_table_gives_stdout_and_stdin_when_free() {
        let c = SerialConfig::from_toml("").unwrap();
        assert_eq!(c, SerialConfig { output: OutputConfig::Stdout, input: InputConfig::Auto });
    }

    #[test]
    fn every_output_form_parses() {
        for (text, want) in [
            (r#"output = "stdout""#, OutputConfig::Stdout),
            (r#"output = "stderr""#, OutputConfig::Stderr),
            (r#"output = "none""#, OutputConfig::None),
            (r#"output = { file = "/tmp/s.log" }"#, OutputConfig::File("/tmp/s.log".into())),
            ("[output]\nfile = \"rel/s.log\"", OutputConfig::File("rel/s.log".into())),
        ] {
            assert_eq!(SerialConfig::from_toml(text).unwrap().output, want, "{text}");
        }
        for (text, want) in
            [("stdin", InputConfig::Stdin), ("none", InputConfig::None), ("auto", InputConfig::Auto)]
        {
            assert_eq!(SerialConfig::from_toml(&format!("input = \"{text}\"")).unwrap().input, want);
        }
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        assert_eq!(err(r#"outptu = "stderr""#), "unknown key `outptu`, expected `output` or `input`");
    }

    #[test]
    fn bad_output_values_list_the_accepted_forms() {
        assert_eq!(
            err(r#"output = "tty""#),
            r#"key `output`: unknown output `tty`: expected "stdout", "stderr", "none" or { file = "path" }"#
        );
        assert_eq!(
            err("output = 3"),
            r#"key `output`: invalid type: integer `3`, expected "stdout", "stderr", "none" or { file = "path" }"#
        );
        assert_eq!(
            err(r#"output = { path = "x" }"#),
            r#"key `output`: unknown key `path`: expected { file = "path" }"#
        );
        assert_eq!(err("output = {}"), r#"key `output`: a table needs a `file` key: { file = "path" }"#);
        assert_eq!(err(r#"output = { file = "" }"#), "key `output`: `file` is empty");
    }

    #[test]
    fn bad_input_value_is_refused() {
        assert_eq!(
            err(r#"input = "tty""#),
            r#"key `input`: unknown input `tty`: expected "auto", "stdin" or "none""#
        );
        assert_eq!(
            err("input = true"),
            r#"key `input`: invalid type: boolean `true`, expected "auto", "stdin" or "none""#
        );
    }

    #[test]
    fn to_toml_round_trips() {
        for c in [
            SerialConfig::default(),
            SerialConfig { output: OutputConfig::Stderr, input: InputConfig::Stdin },
            SerialConfig { output: OutputConfig::None, input: InputConfig::None },
            SerialConfig { output: OutputConfig::Stdout, input: InputConfig::Auto },
            SerialConfig { output: OutputConfig::File("dir/a \"b\".log".into()), input: InputConfig::Stdin },
        ] {
            let text = c.to_toml();
            assert_eq!(SerialConfig::from_toml(&text).unwrap(), c, "{text}");
        }
    }
}
