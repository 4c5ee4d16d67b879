//! What the generated code knows about plugin-api's layouts, and the status word compiled blocks
//! return.
//!
//! Every offset is `offset_of!` on the plugin-api types, so a layout change there moves the
//! generated code with it. `Flow` is read from the host's `HostResult` (returned in RAX:RDX on
//! x86-64 System V: the flow's two bytes in the low 16 bits of RAX, the rest of RAX padding, the
//! value in RDX); its tag values are taken from real `Flow` values, never written down here.

use std::mem::{offset_of, size_of};
use vm_plugin_api::{
    CpuState, ExitReason, Flow, HelperEntry, HostCalls, HostResult, TlbEntry, TlbFast, VmError,
};

pub(crate) const CPU_PC: i32 = offset_of!(CpuState, pc) as i32;
pub(crate) const CPU_X: i32 = offset_of!(CpuState, x) as i32;
pub(crate) const CPU_INSTRET: i32 = offset_of!(CpuState, instret) as i32;
pub(crate) const CPU_ATTENTION: i32 = offset_of!(CpuState, attention) as i32;
pub(crate) const CPU_TLB: i32 = offset_of!(CpuState, tlb) as i32;
pub(crate) const TLB_FAST_SIZE: i32 = size_of::<TlbFast>() as i32;
pub(crate) const TLB_FAST_MASK: i32 = offset_of!(TlbFast, mask) as i32;
pub(crate) const TLB_FAST_TABLE: i32 = offset_of!(TlbFast, table) as i32;
pub(crate) const TLB_READ: i32 = offset_of!(TlbEntry, read) as i32;
pub(crate) const TLB_WRITE: i32 = offset_of!(TlbEntry, write) as i32;
pub(crate) const TLB_ADDEND: i32 = offset_of!(TlbEntry, addend) as i32;
pub(crate) const HOST_CTX: i32 = offset_of!(HostCalls, ctx) as i32;
pub(crate) const HOST_LOAD: i32 = offset_of!(HostCalls, load_fn) as i32;
pub(crate) const HOST_STORE: i32 = offset_of!(HostCalls, store_fn) as i32;
pub(crate) const HOST_HELPERS: i32 = offset_of!(HostCalls, helpers) as i32;
pub(crate) const HELPER_SIZE: i64 = size_of::<HelperEntry>() as i64;
pub(crate) const HELPER_FUNC: i32 = offset_of!(HelperEntry, func) as i32;

// The generated code reads the flow from the first eightbyte of the result and the value from the
// second: that is only how `HostResult` comes back if it is exactly these two eightbytes.
const _: () = assert!(size_of::<HostResult>() == 16);
const _: () = assert!(offset_of!(HostResult, flow) == 0 && offset_of!(HostResult, value) == 8);
const _: () = assert!(size_of::<Flow>() == 2 && size_of::<ExitReason>() == 1);

/// Byte of a `Flow` that holds `Exit`'s reason: a `repr(C, u8)` enum is a `u8` tag followed by a
/// union of the variants' fields, here one byte (checked in the tests below).
const FLOW_REASON_BYTE: u32 = 1;

/// The tag byte of a `Flow`.
pub(crate) const fn flow_tag(flow: Flow) -> u8 {
    // SAFETY: a `repr(C, u8)` enum starts with its `u8` tag, which is always initialised (the
    // payload byte may not be, so only byte 0 is read).
    unsafe { *(&raw const flow).cast::<u8>() }
}

pub(crate) const TAG_CONTINUE: u8 = flow_tag(Flow::Continue);
pub(crate) const TAG_REDIRECT: u8 = flow_tag(Flow::Redirect);
pub(crate) const TAG_EXIT: u8 = flow_tag(Flow::Exit(ExitReason::Halt));

/// The low 16 bits of a status word that says `Flow::Exit(reason)`.
pub(crate) const fn exit_bits(reason: ExitReason) -> u64 {
    TAG_EXIT as u64 | (reason as u8 as u64) << (8 * FLOW_REASON_BYTE)
}

/// A block's status word: bits 0..16 a `Flow` in its C layout; for `Continue` (the block
/// completed), bits 16..24 the successor it left through (`NO_SUCC` for an indirect jump) and
/// bits 32..64 the block's id.
pub(crate) const fn next_bits(block: u32, succ: u8) -> u64 {
    TAG_CONTINUE as u64 | (succ as u64) << 16 | (block as u64) << 32
}

/// The successor of a block that ended with an indirect jump: nothing to link.
pub(crate) const NO_SUCC: u8 = 0xff;

/// What a run of generated code ended with. `cpu.pc` is where the guest goes on in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Block `from` completed through successor `succ` (`None`: an indirect jump) into a block
    /// that is not linked.
    Next {
        /// The block that completed.
        from: u32,
        /// Its successor slot (0: `Jump` or taken branch, 1: branch not taken).
        succ: Option<u8>,
    },
    /// The host redirected control (a trap, `mret`, ...).
    Redirect,
    /// Return to the host with this reason.
    Exit(ExitReason),
}

const REASONS: [ExitReason; 6] = [
    ExitReason::BudgetExhausted,
    ExitReason::ExitRequested,
    ExitReason::Wfi,
    ExitReason::Halt,
    ExitReason::HostError,
    ExitReason::Debug,
];

/// Decodes a status word.
pub(crate) fn decode(status: u64) -> Result<Outcome, VmError> {
    let tag = status as u8;
    if tag == TAG_CONTINUE {
        let succ = (status >> 16) as u8;
        Ok(Outcome::Next { from: (status >> 32) as u32, succ: (succ != NO_SUCC).then_some(succ) })
    } else if tag == TAG_REDIRECT {
        Ok(Outcome::Redirect)
    } else if tag == TAG_EXIT {
        let byte = (status >> (8 * FLOW_REASON_BYTE)) as u8;
        REASONS
            .into_iter()
            .find(|r| *r as u8 == byte)
            .map(Outcome::Exit)
            .ok_or_else(|| VmError::engine(format!("the host answered an unknown exit reason {byte}")))
    } else {
        Err(VmError::engine(format!("the host answered an unknown flow tag {tag}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_bytes_are_a_tag_then_the_reason() {
        for reason in REASONS {
            let flow = Flow::Exit(reason);
            // SAFETY: both bytes of an `Exit` are initialised (tag and reason).
            let bytes: [u8; 2] = unsafe { std::mem::transmute(flow) };
            assert_eq!(u16::from_le_bytes(bytes) as u64, exit_bits(reason));
            assert_eq!(decode(exit_bits(reason)).unwrap(), Outcome::Exit(reason));
        }
        assert_eq!((TAG_CONTINUE, TAG_REDIRECT, TAG_EXIT), (0, 1, 2));
        assert_eq!(decode(next_bits(7, 1)).unwrap(), Outcome::Next { from: 7, succ: Some(1) });
        assert_eq!(decode(next_bits(7, NO_SUCC)).unwrap(), Outcome::Next { from: 7, succ: None });
        assert!(decode(9).is_err());
        assert!(decode(TAG_EXIT as u64 | 0x4000).is_err());
    }

    #[test]
    fn reason_list_is_complete() {
        // A new ExitReason would be a layout change of plugin-api; this catches a forgotten entry.
        for (i, r) in REASONS.iter().enumerate() {
            assert_eq!(*r as u8 as usize, i);
        }
    }
}
