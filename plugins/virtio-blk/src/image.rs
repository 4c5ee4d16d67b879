//! The disk image: opened and locked when the device is created, so a missing, unreadable or
//! busy file stops the VM at start rather than at the guest's first request.
//!
//! Locking follows QEMU's image locking in spirit: an open file description lock (`fcntl`
//! `F_OFD_SETLK`, which conflicts between processes and between opens within one process) over
//! the whole file, exclusive for a writable image and shared for a read-only one. So a second VM
//! cannot open an image another one writes, and read-only users share it.

use crate::config::CacheMode;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vm_plugin_api::{ErrorKind, VmError};

/// Bytes per virtio-blk sector: the unit of request offsets and of the capacity.
pub const SECTOR_SIZE: u64 = 512;

/// The alignment O_DIRECT transfers get here: a page covers every logical block size in use.
const DIRECT_ALIGN: u64 = 4096;

/// An open, locked disk image.
pub struct DiskImage {
    path: PathBuf,
    /// The locked descriptor; buffered (O_DSYNC with `cache = "none"`).
    file: File,
    /// With `cache = "none"` where O_DIRECT is allowed: used for aligned transfers.
    direct: Option<File>,
    read_only: bool,
    sectors: u64,
}

impl DiskImage {
    /// Opens and locks `path`.
    pub fn open(path: &Path, read_only: bool, cache: CacheMode) -> Result<Self, VmError> {
        let sync = if cache == CacheMode::None { libc::O_DSYNC } else { 0 };
        let file = open(path, read_only, sync)?;
        lock(&file, path, read_only)?;
        let meta = file.metadata().map_err(|e| io_error(path, "cannot read its metadata", &e))?;
        if meta.is_dir() {
            return Err(VmError::config(format!("disk image {}: is a directory", path.display())));
        }
        // A file system without O_DIRECT (tmpfs) refuses it with EINVAL: O_DSYNC alone then.
        let direct = match cache {
            CacheMode::None => open(path, read_only, libc::O_DIRECT | libc::O_DSYNC).ok(),
            CacheMode::Writeback => None,
        };
        let bytes = (&file).seek(SeekFrom::End(0)).map_err(|e| io_error(path, "cannot find its size", &e))?;
        Ok(DiskImage { path: path.to_path_buf(), file, direct, read_only, sectors: bytes / SECTOR_SIZE })
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in 512-byte sectors (a partial sector at the end is not part of the disk).
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether the image was opened read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether aligned transfers bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Reads up to `len` bytes at byte `offset` into host memory at `buf`.
    ///
    /// # Safety
    /// `buf` must be valid for writes of `len` bytes.
    pub unsafe fn pread(&self, buf: *mut u8, len: usize, offset: u64) -> io::Result<usize> {
        let fd = self.fd_for(buf as usize, len, offset);
        // SAFETY: the caller guarantees buf..buf + len is writable.
        let n = unsafe { libc::pread(fd, buf.cast(), len, offset as libc::off_t) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }

    /// Writes up to `len` bytes from host memory at `buf` to byte `offset`.
    ///
    /// # Safety
    /// `buf` must be valid for reads of `len` bytes.
    pub unsafe fn pwrite(&self, buf: *const u8, len: usize, offset: u64) -> io::Result<usize> {
        let fd = self.fd_for(buf as usize, len, offset);
        // SAFETY: the caller guarantees buf..buf + len is readable.
        let n = unsafe { libc::pwrite(fd, buf.cast(), len, offset as libc::off_t) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }

    /// Makes every completed write durable (the guest's FLUSH).
    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The descriptor for a transfer: the O_DIRECT one when it can take it.
    fn fd_for(&self, addr: usize, len: usize, offset: u64) -> i32 {
        match &self.direct {
            Some(d) if (addr as u64 | len as u64 | offset).is_multiple_of(DIRECT_ALIGN) => d.as_raw_fd(),
            _ => self.file.as_raw_fd(),
        }
    }

    /// Reads `buf.len()` bytes at `offset` (tests and tools).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

fn open(path: &Path, read_only: bool, flags: i32) -> Result<File, VmError> {
    OpenOptions::new().read(true).write(!read_only).custom_flags(flags | libc::O_CLOEXEC).open(path).map_err(
        |e| {
            let how = if read_only {
                "cannot open it for reading"
            } else {
                "cannot open it for reading and writing"
            };
            io_error(path, how, &e)
        },
    )
}

fn io_error(path: &Path, what: &str, e: &io::Error) -> VmError {
    let kind = if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::PermissionDenied {
        ErrorKind::Config
    } else {
        ErrorKind::Io
    };
    VmError::new(kind, format!("disk image {}: {what}: {e}", path.display()))
}

/// Takes the whole-file OFD lock: exclusive for writing, shared for reading.
fn lock(file: &File, path: &Path, read_only: bool) -> Result<(), VmError> {
    // SAFETY: an all-zero flock is a valid value (whole file from offset 0; l_pid must be 0 for
    // OFD locks).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if read_only { libc::F_RDLCK } else { libc::F_WRLCK } as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: a valid descriptor and a valid flock for F_OFD_SETLK.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    let busy = matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES));
    if !busy {
        return Err(io_error(path, "cannot lock it", &e));
    }
    let how = if read_only {
        "another process is writing to it"
    } else {
        "another process uses it (a disk image open for writing cannot be shared)"
    };
    Err(VmError::new(ErrorKind::Io, format!("disk image {} is locked: {how}", path.display())))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file of `len` bytes unique to this test, removed when dropped.
    pub(crate) struct TempImage(pub(crate) PathBuf);

    impl TempImage {
        pub(crate) fn new(name: &str, len: u64) -> Self {
            let p = std::env::temp_dir().join(format!("vm-virtio-blk-{}-{name}.img", std::process::id()));
            let f = File::create(&p).unwrap();
            f.set_len(len).unwrap();
            TempImage(p)
        }
    }

    impl Drop for TempImage {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn capacity_is_in_whole_sectors() {
        let img = TempImage::new("cap", 10 * 512 + 100);
        let d = DiskImage::open(&img.0, false, CacheMode::Writeback).unwrap();
        assert_eq!(d.sectors(), 10);
        assert!(!d.read_only());
    }

    #[test]
    fn a_missing_file_is_refused_with_its_path() {
        let p = std::env::temp_dir().join("vm-virtio-blk-no-such-file.img");
        let e = DiskImage::open(&p, false, CacheMode::Writeback).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(
            e.message(),
            format!(
                "disk image {}: cannot open it for reading and writing: No such file or directory (os error 2)",
                p.display()
            )
        );
    }

    #[test]
    fn a_directory_is_refused() {
        let e = DiskImage::open(&std::env::temp_dir(), true, CacheMode::Writeback).err().unwrap();
        assert!(e.message().ends_with("is a directory"), "{}", e.message());
    }

    #[test]
    fn a_second_writable_open_is_refused_while_the_first_holds_it() {
        let img = TempImage::new("lock-rw", 4096);
        let first = DiskImage::open(&img.0, false, CacheMode::Writeback).unwrap();
        for ro in [false, true] {
            let e = DiskImage::open(&img.0, ro, CacheMode::Writeback).err().unwrap();
            assert!(
                e.message()
                    .starts_with(&format!("disk image {} is locked: another process", img.0.display()))
            );
        }
        drop(first);
        DiskImage::open(&img.0, false, CacheMode::Writeback).expect("free again once the first is closed");
    }

    #[test]
    fn read_only_opens_share_and_keep_writers_out() {
        let img = TempImage::new("lock-ro", 4096);
        let a = DiskImage::open(&img.0, true, CacheMode::Writeback).unwrap();
        let b = DiskImage::open(&img.0, true, CacheMode::None).unwrap();
        assert!(a.read_only() && b.read_only());
        let e = DiskImage::open(&img.0, false, CacheMode::Writeback).err().unwrap();
        assert_eq!(
            e.message(),
            format!(
                "disk image {} is locked: another process uses it (a disk image open for writing cannot be shared)",
                img.0.display()
            )
        );
    }

    #[test]
    fn a_read_only_open_of_a_file_it_may_not_write_works() {
        let img = TempImage::new("perm", 1024);
        let mut perm = std::fs::metadata(&img.0).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
        std::fs::set_permissions(&img.0, perm).unwrap();
        DiskImage::open(&img.0, true, CacheMode::Writeback).unwrap();
    }

    #[test]
    fn cache_none_writes_reach_the_file() {
        let img = TempImage::new("direct", 8192);
        let d = DiskImage::open(&img.0, false, CacheMode::None).unwrap();
        #[repr(align(4096))]
        struct Page([u8; 4096]);
        let page = Page([0x5a; 4096]);
        // SAFETY: a live 4096-byte buffer.
        assert_eq!(unsafe { d.pwrite(page.0.as_ptr(), 4096, 4096) }.unwrap(), 4096);
        let odd = [0xa5u8; 512];
        // SAFETY: a live 512-byte buffer (unaligned: the buffered descriptor takes it).
        assert_eq!(unsafe { d.pwrite(odd.as_ptr(), 512, 512) }.unwrap(), 512);
        let bytes = std::fs::read(&img.0).unwrap();
        assert!(bytes[4096..].iter().all(|&b| b == 0x5a));
        assert!(bytes[512..1024].iter().all(|&b| b == 0xa5));
        assert!(bytes[..512].iter().all(|&b| b == 0));
    }
}
