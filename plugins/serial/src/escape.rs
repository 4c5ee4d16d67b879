//! The console's escape keys, as QEMU's `-nographic` multiplexer reads them (chardev/char-mux.c):
//! Ctrl-A followed by a key is a command, not input.
//!
//! - `C-a x`: quit (QEMU exits with status 0);
//! - `C-a h` or `C-a ?`: list the keys;
//! - `C-a C-a` (QEMU) or `C-a a`: send one Ctrl-A to the guest;
//! - any other key after Ctrl-A is dropped with it, as QEMU drops the keys it has no use for
//!   (its `s`, `t`, `b` and `c` act on things vmhost does not have).
//!
//! Letters are taken in either case, so Caps Lock does not disarm Ctrl-A X.

/// Ctrl-A, the escape key.
pub(crate) const CTRL_A: u8 = 0x01;

/// The key list printed by `C-a h`, in QEMU's layout.
pub(crate) const HELP: &str = "\
C-a h    print this help
C-a x    exit emulator
C-a a    sends C-a
C-a C-a  sends C-a
";

/// What one input byte comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A byte for the guest.
    Byte(u8),
    /// Stop the VM.
    Quit,
    /// Print [`HELP`].
    Help,
    /// Nothing (the escape key itself, or a key with no command).
    Nothing,
}

/// The escape state: whether the last byte was a lone Ctrl-A. It lasts across reads, so a
/// Ctrl-A at the end of one read applies to the first byte of the next.
#[derive(Debug, Default)]
pub(crate) struct Escape {
    armed: bool,
}

impl Escape {
    /// Takes one input byte.
    pub(crate) fn key(&mut self, byte: u8) -> Key {
        if !self.armed {
            if byte == CTRL_A {
                self.armed = true;
                return Key::Nothing;
            }
            return Key::Byte(byte);
        }
        self.armed = false;
        match byte.to_ascii_lowercase() {
            CTRL_A | b'a' => Key::Byte(CTRL_A),
            b'x' => Key::Quit,
            b'h' | b'?' => Key::Help,
            _ => Key::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys a byte sequence gives, with `Nothing` left out.
    fn keys(input: &[u8]) -> Vec<Key> {
        let mut e = Escape::default();
        input.iter().map(|&b| e.key(b)).filter(|k| *k != Key::Nothing).collect()
    }

    fn bytes(s: &[u8]) -> Vec<Key> {
        s.iter().map(|&b| Key::Byte(b)).collect()
    }

    #[test]
    fn plain_bytes_pass_through_including_other_control_characters() {
        let all: Vec<u8> = (0..=255u8).filter(|&b| b != CTRL_A).collect();
        assert_eq!(keys(&all), bytes(&all));
    }

    #[test]
    fn ctrl_a_x_quits_in_either_case() {
        assert_eq!(keys(b"ls\r\x01x"), [bytes(b"ls\r"), vec![Key::Quit]].concat());
        assert_eq!(keys(b"\x01X"), [Key::Quit]);
    }

    #[test]
    fn ctrl_a_h_and_question_mark_list_the_keys() {
        assert_eq!(keys(b"\x01h\x01H\x01?"), [Key::Help, Key::Help, Key::Help]);
    }

    #[test]
    fn a_literal_ctrl_a_is_sent_by_ctrl_a_a_or_ctrl_a_twice() {
        assert_eq!(keys(b"\x01a"), [Key::Byte(CTRL_A)]);
        assert_eq!(keys(b"\x01A"), [Key::Byte(CTRL_A)]);
        assert_eq!(keys(b"\x01\x01"), [Key::Byte(CTRL_A)]);
        // The second Ctrl-A was consumed as data: the x after it is input, not a quit.
        assert_eq!(keys(b"\x01\x01x"), [Key::Byte(CTRL_A), Key::Byte(b'x')]);
    }

    #[test]
    fn other_keys_after_ctrl_a_are_dropped_with_it() {
        assert_eq!(keys(b"\x01c\x01s\x01t\x01b\x01z\x01\r"), []);
        assert_eq!(keys(b"\x01zq"), bytes(b"q"), "only one key after Ctrl-A is taken");
    }

    #[test]
    fn the_escape_lasts_across_reads() {
        let mut e = Escape::default();
        assert_eq!(e.key(b'k'), Key::Byte(b'k'));
        assert_eq!(e.key(CTRL_A), Key::Nothing);
        // A new read: the state carried over.
        assert_eq!(e.key(b'x'), Key::Quit);
        assert_eq!(e.key(b'x'), Key::Byte(b'x'), "disarmed after one command");
    }

    #[test]
    fn the_help_names_every_command() {
        for line in ["C-a h", "C-a x", "C-a a", "C-a C-a"] {
            assert!(HELP.lines().any(|l| l.starts_with(line)), "{line}");
        }
    }
}
