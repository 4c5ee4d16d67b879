//! Where transmitted bytes go on the host.

use crate::config::OutputConfig;
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::Path,
};
use vm_plugin_api::{ErrorKind, VmError};

/// An open output. Bytes are written through at once: the guest's console must show a prompt
/// that has no newline yet, and a crash must not lose the last lines.
#[derive(Debug)]
pub(crate) enum Output {
    Stdout,
    Stderr,
    Discard,
    /// Unbuffered, so every byte is already in the file.
    File(File),
}

impl Output {
    /// Opens the output a configuration names; a relative file path is taken from `dir` (the
    /// directory of the vm.toml the configuration came from).
    pub(crate) fn open(config: &OutputConfig, dir: &Path) -> Result<Output, VmError> {
        Ok(match config {
            OutputConfig::Stdout => Output::Stdout,
            OutputConfig::Stderr => Output::Stderr,
            OutputConfig::None => Output::Discard,
            OutputConfig::File(path) => {
                let path = dir.join(path);
                let file = OpenOptions::new().append(true).create(true).open(&path).map_err(|e| {
                    VmError::new(ErrorKind::Io, format!("cannot open output file `{}`: {e}", path.display()))
                })?;
                Output::File(file)
            }
        })
    }

    /// Sends one byte.
    pub(crate) fn write_byte(&mut self, byte: u8) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&[byte])?;
                out.flush()
            }
            Output::Stderr => io::stderr().write_all(&[byte]),
            Output::Discard => Ok(()),
            Output::File(f) => f.write_all(&[byte]),
        }
    }

    /// Pushes out anything the host's streams still buffer.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().flush(),
            Output::Stderr => io::stderr().flush(),
            Output::Discard => Ok(()),
            Output::File(f) => f.flush(),
        }
    }
}
