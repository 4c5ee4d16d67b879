//! Raw mode for a terminal on stdin, as QEMU's `-nographic` sets it (`mon:stdio`, `signal=off`):
//! no line editing, no echo, no input translation, no signal keys, 8-bit; output processing
//! stays on. Ctrl-C, Ctrl-Z and Ctrl-\ are bytes for the guest (a shell's foreground job, not the
//! VM, gets them); Ctrl-A X stops the VM, and SIGINT from elsewhere still does.
//!
//! The saved settings are restored by [`restore`], which the device calls when it stops or is
//! dropped, and by an `atexit` handler, so a host that exits without dropping its devices
//! (`std::process::exit`, a panic leaving `main`) leaves the terminal as it found it.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Mutex, Once};

/// The terminal whose settings were changed, and what they were.
static SAVED: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);

fn saved() -> std::sync::MutexGuard<'static, Option<(RawFd, libc::termios)>> {
    SAVED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Puts the terminal `fd` in raw mode, saving its settings for [`restore`]. Returns `false`, and
/// changes nothing, when `fd` is not a terminal (a pipe, a file, /dev/null) or is raw already.
pub(crate) fn enter_raw(fd: RawFd) -> io::Result<bool> {
    let mut saved = saved();
    if saved.is_some() {
        return Ok(false);
    }
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(fd) } != 1 {
        return Ok(false);
    }
    // SAFETY: termios is plain data; tcgetattr fills it in or fails.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `old` is a valid termios to write to.
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut raw = old;
    raw.c_iflag &= !(libc::IGNBRK
        | libc::BRKINT
        | libc::PARMRK
        | libc::ISTRIP
        | libc::INLCR
        | libc::IGNCR
        | libc::ICRNL
        | libc::IXON);
    raw.c_oflag |= libc::OPOST;
    raw.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::IEXTEN | libc::ISIG);
    raw.c_cflag &= !(libc::CSIZE | libc::PARENB);
    raw.c_cflag |= libc::CS8;
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // SAFETY: `raw` is a valid termios read from this terminal and then adjusted.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    *saved = Some((fd, old));
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: the handler is a plain function of this library, which is never unloaded.
        // Failing to register only loses the safety net, not the explicit restores.
        unsafe { libc::atexit(restore_at_exit) };
    });
    Ok(true)
}

/// Gives the terminal back the settings [`enter_raw`] found, if it changed them.
pub(crate) fn restore() {
    if let Some((fd, old)) = saved().take() {
        // SAFETY: `old` came from tcgetattr on this descriptor. Nothing useful can be done
        // about a failure on the way out.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    }
}

extern "C" fn restore_at_exit() {
    restore();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A pseudo-terminal's follower side, standing in for a terminal on stdin.
    struct Pty {
        leader: RawFd,
        follower: std::fs::File,
    }

    impl Pty {
        fn open() -> Pty {
            // SAFETY: plain libc calls on a descriptor this test owns; each result is checked.
            unsafe {
                let leader = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
                assert!(leader >= 0, "posix_openpt: {}", io::Error::last_os_error());
                assert_eq!(libc::grantpt(leader), 0);
                assert_eq!(libc::unlockpt(leader), 0);
                let name = std::ffi::CStr::from_ptr(libc::ptsname(leader)).to_str().unwrap().to_string();
                let follower = std::fs::OpenOptions::new().read(true).write(true).open(name).unwrap();
                Pty { leader, follower }
            }
        }

        fn attrs(&self) -> libc::termios {
            // SAFETY: as in enter_raw.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                assert_eq!(libc::tcgetattr(self.follower.as_raw_fd(), &mut t), 0);
                t
            }
        }
    }

    impl Drop for Pty {
        fn drop(&mut self) {
            // SAFETY: the leader descriptor is ours and closed once.
            unsafe { libc::close(self.leader) };
        }
    }

    // One test: the saved settings are process-wide, so two tests would race for them.
    #[test]
    fn a_terminal_goes_raw_with_signal_keys_for_the_guest_and_comes_back_and_a_pipe_is_left_alone() {
        let pty = Pty::open();
        let fd = pty.follower.as_raw_fd();
        let before = pty.attrs();
        assert_ne!(before.c_lflag & libc::ICANON, 0, "a new pty starts cooked");

        assert!(enter_raw(fd).unwrap());
        let raw = pty.attrs();
        assert_eq!(raw.c_lflag & (libc::ICANON | libc::ECHO | libc::IEXTEN), 0);
        assert_eq!(raw.c_iflag & (libc::ICRNL | libc::IXON), 0, "CR and Ctrl-S/Ctrl-Q reach the guest");
        assert_eq!(raw.c_lflag & libc::ISIG, 0, "Ctrl-C reaches the guest, as with QEMU's -nographic");
        assert_ne!(raw.c_oflag & libc::OPOST, 0);
        assert_eq!(raw.c_cflag & libc::CSIZE, libc::CS8);
        assert!(!enter_raw(fd).unwrap(), "raw already: the first saved settings are kept");

        restore();
        let after = pty.attrs();
        assert_eq!(
            (after.c_iflag, after.c_oflag, after.c_cflag, after.c_lflag),
            (before.c_iflag, before.c_oflag, before.c_cflag, before.c_lflag)
        );
        restore();

        let (r, _w) = std::io::pipe().unwrap();
        assert!(!enter_raw(r.as_raw_fd()).unwrap(), "a pipe is not a terminal");
        assert!(saved().is_none());
    }
}
