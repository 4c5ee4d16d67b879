//! The virtio-blk device's configuration: its table in `vm.toml`.
//!
//! ```toml
//! path = "disk.img"        # required: the raw disk image, relative to the vm.toml's directory
//! read_only = false        # default false: the guest may write
//! cache = "writeback"      # default; or "none": O_DIRECT (or O_DSYNC), writes durable when done
//! serial = "disk0"         # default empty: what GET_ID answers (at most 20 bytes)
//! ```

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use virtio_bindings::virtio_blk::VIRTIO_BLK_ID_BYTES;
use vm_plugin_api::VmError;

/// The device's configuration. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlkConfig {
    /// The raw disk image. A relative path is relative to the directory of the vm.toml file.
    pub path: PathBuf,
    /// The guest may only read: the image is opened read-only (and locked shared).
    #[serde(default)]
    pub read_only: bool,
    /// How writes reach the image.
    #[serde(default)]
    pub cache: CacheMode,
    /// The device serial number GET_ID answers with (at most 20 bytes; empty by default, as
    /// QEMU's).
    #[serde(default)]
    pub serial: String,
}

/// How the image is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Through the host's page cache; a guest FLUSH makes writes durable (`fdatasync`), QEMU's
    /// default.
    #[default]
    Writeback,
    /// Past the page cache (`O_DIRECT`, falling back to buffered I/O where the file system or
    /// the buffer's alignment refuses it), with `O_DSYNC`: every write is durable when the guest
    /// sees it complete.
    None,
}

impl BlkConfig {
    /// Parses the device's TOML table.
    pub fn from_toml(toml_text: &str) -> Result<Self, VmError> {
        let c: BlkConfig = vm_plugin_api::config::parse(toml_text)?;
        if c.path.as_os_str().is_empty() {
            return Err(VmError::config("key `path`: the disk image's path is empty"));
        }
        if c.serial.len() > VIRTIO_BLK_ID_BYTES as usize {
            return Err(VmError::config(format!(
                "key `serial`: {:?} is {} bytes; a virtio-blk serial has at most {VIRTIO_BLK_ID_BYTES}",
                c.serial,
                c.serial.len()
            )));
        }
        Ok(c)
    }

    /// The configuration as a TOML table, in the form [`BlkConfig::from_toml`] reads.
    pub fn to_toml(&self) -> String {
        // A path, a bool and strings: serialising cannot fail (a non-UTF-8 path is shown lossily).
        toml::to_string(self).unwrap_or_else(|_| {
            format!("path = {:?}\nread_only = {}\n", self.path.to_string_lossy(), self.read_only)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_plugin_api::ErrorKind;

    fn err(toml_text: &str) -> String {
        let e = BlkConfig::from_toml(toml_text).expect_err(toml_text);
        assert_eq!(e.kind, ErrorKind::Config);
        e.message().to_string()
    }

    #[test]
    fn path_alone_gives_the_defaults() {
        let c = BlkConfig::from_toml(r#"path = "disk.img""#).unwrap();
        assert_eq!(
            c,
            BlkConfig {
                path: "disk.img".into(),
                read_only: false,
                cache: CacheMode::Writeback,
                serial: String::new()
            }
        );
    }

    #[test]
    fn every_key_parses() {
        let c =
            BlkConfig::from_toml("path = \"/d/x.img\"\nread_only = true\ncache = \"none\"\nserial = \"SN1\"")
                .unwrap();
        assert_eq!(
            c,
            BlkConfig {
                path: "/d/x.img".into(),
                read_only: true,
                cache: CacheMode::None,
                serial: "SN1".into()
            }
        );
    }

    #[test]
    fn path_is_required() {
        assert_eq!(err("read_only = true"), "missing key `path`");
        assert_eq!(err(r#"path = """#), "key `path`: the disk image's path is empty");
    }

    #[test]
    fn unknown_key_is_refused_by_name_with_the_expected_ones() {
        assert_eq!(
            err("path = \"d\"\nreadonly = true"),
            "unknown key `readonly`, expected one of `path`, `read_only`, `cache`, `serial`"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            err("path = \"d\"\ncache = \"writethrough\""),
            "key `cache`: unknown variant `writethrough`, expected `writeback` or `none`"
        );
        assert_eq!(
            err("path = \"d\"\nread_only = 1"),
            "key `read_only`: invalid type: integer `1`, expected a boolean"
        );
        assert_eq!(
            err("path = \"d\"\nserial = \"123456789012345678901\""),
            "key `serial`: \"123456789012345678901\" is 21 bytes; a virtio-blk serial has at most 20"
        );
    }

    #[test]
    fn to_toml_round_trips() {
        for c in [
            BlkConfig::from_toml(r#"path = "a b/\"c\".img""#).unwrap(),
            BlkConfig { path: "x".into(), read_only: true, cache: CacheMode::None, serial: "s".into() },
        ] {
            assert_eq!(BlkConfig::from_toml(&c.to_toml()).unwrap(), c);
        }
    }
}
