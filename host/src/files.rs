//! Files named by vm.toml (kernel, firmware, initrd, device tree, vm.toml itself) and plugin
//! libraries are read only if they are regular files, with their size checked before reading:
//! a FIFO must not block vmhost, and `/dev/zero` or a huge sparse file must not fill its memory.

use std::path::Path;

/// What a file that is not a regular file is, for messages; `None` for a regular file.
pub fn not_regular(m: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    })
}

/// Reads `path` if it is a regular file of at most `max` bytes. The type and size are checked on
/// the opened file before reading (opened non-blocking, so a FIFO cannot stall the open); at most
/// `max` bytes are read even if the file grows meanwhile. `too_large` words the size error.
pub fn read_regular_file(
    path: &Path,
    max: u64,
    too_large: impl Fn(u64) -> String,
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if let Some(kind) = not_regular(&meta) {
        return Err(format!("{} is {kind}, not a regular file", path.display()));
    }
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut data).map_err(cannot)?;
    if data.len() as u64 > max {
        return Err(too_large(data.len() as u64));
    }
    Ok(data)
}
