//! The architectural state engines run on, owned by the host.
//!
//! One `#[repr(C)]` struct holds everything an engine touches on its fast paths. Swapping engines is
//! handing the same `CpuState` to another engine, so an engine must write back every value it
//! cached before it returns.

use abi_stable::StableAbi;

/// Guest CPU state shared between the host and the running engine.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuState {
    /// Integer registers. Entry 0 is always 0 for RISC-V; the frontend never writes it.
    pub x: [u64; 32],
    /// Floating-point registers, as raw bits.
    pub f: [u64; 32],
    /// Program counter of the next instruction to execute.
    pub pc: u64,
    /// Guest instructions retired since reset.
    pub instret: u64,
    /// Current privilege level, in the guest ISA's encoding.
    pub privilege: u8,
}

impl CpuState {
    /// Reads integer register `index` (out-of-range reads give 0).
    pub fn get_register(&self, index: usize) -> u64 {
        self.x.get(index).copied().unwrap_or(0)
    }
    /// Writes integer register `index`; writes to register 0 or out of range are ignored.
    pub fn set_register(&mut self, index: usize, value: u64) {
        if index != 0
            && let Some(r) = self.x.get_mut(index)
        {
            *r = value;
        }
    }
    /// The program counter.
    pub fn get_pc(&self) -> u64 {
        self.pc
    }
    /// Sets the program counter.
    pub fn set_pc(&mut self, pc: u64) {
        self.pc = pc;
    }
}
