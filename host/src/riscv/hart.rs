//! The RISC-V hart's privileged state: CSRs, traps and interrupts (machine mode, RV64IMC).
//!
//! `mip.MEIP` and `mip.SEIP` are the PLIC's outputs for the hart's M and S contexts, read from
//! an atomic the PLIC writes. With no S-mode yet, SEIP can be read in `mip` but never enabled in
//! `mie`, so it is never taken and never ends `wfi`.
//!
//! Engines execute IR on `CpuState`; whatever the IR cannot express (CSR access, `ecall`, `mret`,
//! faults) comes here through the helper calls defined in [`super::helper`].

use super::csr::*;
use super::helper::{CSR_NO_READ, CSR_NO_WRITE, CSR_NUMBER_MASK};
use crate::devices::clint::Clint;
use crate::devices::plic::ExternalIrq;
use vm_plugin_api::CpuState;

/// Privilege level encodings.
pub const PRIV_M: u8 = 3;

/// Synchronous exception causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Exception {
    /// Instruction access fault.
    FetchAccess = 1,
    /// Illegal instruction.
    Illegal = 2,
    /// Breakpoint.
    Breakpoint = 3,
    /// Load access fault.
    LoadAccess = 5,
    /// Store/AMO access fault.
    StoreAccess = 7,
    /// Environment call from M-mode.
    EcallM = 11,
}

const INTERRUPT: u64 = 1 << 63;

/// Machine-mode CSR state of one hart.
pub struct Hart {
    /// `mstatus` (only MIE and MPIE are writable; MPP reads as M).
    pub mstatus: u64,
    /// `mtvec`.
    pub mtvec: u64,
    /// `mie`.
    pub mie: u64,
    /// `mscratch`.
    pub mscratch: u64,
    /// `mepc`.
    pub mepc: u64,
    /// `mcause`.
    pub mcause: u64,
    /// `mtval`.
    pub mtval: u64,
    /// `minstret` minus `cpu.instret` (set by writes to `minstret`).
    instret_offset: u64,
    /// `mcycle` minus `cpu.instret`: the hart counts one cycle per instruction.
    cycle_offset: u64,
    /// MEIP and SEIP, driven by the PLIC.
    external: ExternalIrq,
    clint: Clint,
    hartid: u64,
}

/// A CSR access the hart refuses: the instruction is illegal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalCsr;

impl Hart {
    /// A hart in its reset state, with its timer and software interrupts from `clint` and its
    /// external interrupts from the PLIC through `external`.
    pub fn new(hartid: u64, clint: Clint, external: ExternalIrq) -> Hart {
        Hart {
            mstatus: MSTATUS_MPP,
            mtvec: 0,
            mie: 0,
            mscratch: 0,
            mepc: 0,
            mcause: 0,
            mtval: 0,
            instret_offset: 0,
            cycle_offset: 0,
            external,
            clint,
            hartid,
        }
    }

    /// Current `mip`.
    pub fn mip(&self) -> u64 {
        let (msip, mtip) = self.clint.pending();
        (if msip { MIP_MSIP } else { 0 }) | (if mtip { MIP_MTIP } else { 0 }) | self.external.bits()
    }

    /// Interrupts pending and enabled in `mie`, regardless of `mstatus.MIE` (what wakes `wfi`).
    pub fn wake_pending(&self) -> bool {
        self.mip() & self.mie != 0
    }

    /// The interrupt to take now, if any: pending, enabled, and globally enabled for M-mode.
    pub fn interrupt_to_take(&self) -> Option<u64> {
        if self.mstatus & MSTATUS_MIE == 0 {
            return None;
        }
        let pending = self.mip() & self.mie;
        // Priority order from the privileged spec: external, software, timer.
        [11u64, 3, 7].into_iter().find(|&code| pending & (1 << code) != 0)
    }

    /// Takes interrupt `code`: the interrupted instruction has not executed, so `mepc = cpu.pc`.
    pub fn take_interrupt(&mut self, cpu: &mut CpuState, code: u64) {
        self.trap(cpu, INTERRUPT | code, 0);
    }

    /// Raises exception `e` for the instruction at `cpu.pc`.
    pub fn raise(&mut self, cpu: &mut CpuState, e: Exception, tval: u64) {
        self.trap(cpu, e as u64, tval);
    }

    fn trap(&mut self, cpu: &mut CpuState, cause: u64, tval: u64) {
        self.mepc = cpu.pc;
        self.mcause = cause;
        self.mtval = tval;
        let mie = self.mstatus & MSTATUS_MIE != 0;
        self.mstatus &= !(MSTATUS_MIE | MSTATUS_MPIE);
        if mie {
            self.mstatus |= MSTATUS_MPIE;
        }
        cpu.privilege = PRIV_M;
        let base = self.mtvec & !3;
        let vectored = self.mtvec & 1 == 1 && cause & INTERRUPT != 0;
        cpu.pc = if vectored { base.wrapping_add(4 * (cause & 0xfff)) } else { base };
    }

    /// `mret`: returns to `mepc`, restoring MIE from MPIE. The instruction retires.
    pub fn mret(&mut self, cpu: &mut CpuState) {
        let mpie = self.mstatus & MSTATUS_MPIE != 0;
        self.mstatus &= !MSTATUS_MIE;
        if mpie {
            self.mstatus |= MSTATUS_MIE;
        }
        self.mstatus |= MSTATUS_MPIE;
        cpu.privilege = PRIV_M;
        cpu.pc = self.mepc;
        cpu.instret += 1;
    }

    /// A CSR instruction: `op` is 1 (write), 2 (set bits) or 3 (clear bits) per the helper ids;
    /// `b` carries the CSR number and flags. Returns the old value.
    pub fn csr_op(&mut self, cpu: &CpuState, op: u32, a: u64, b: u64) -> Result<u64, IllegalCsr> {
        let csr = (b & CSR_NUMBER_MASK) as u16;
        let read = op != 1 || b & CSR_NO_READ == 0;
        let write = op == 1 || b & CSR_NO_WRITE == 0;
        // csr[9:8] is the lowest privilege allowed; csr[11:10] == 3 means read-only.
        if (csr >> 8) as u8 & 3 > cpu.privilege || (write && csr >> 10 == 3) {
            return Err(IllegalCsr);
        }
        let old = if read || write { self.read_csr(cpu, csr)? } else { 0 };
        if write {
            let new = match op {
                1 => a,
                2 => old | a,
                _ => old & !a,
            };
            self.write_csr(cpu, csr, new)?;
        }
        Ok(old)
    }

    fn read_csr(&self, cpu: &CpuState, csr: u16) -> Result<u64, IllegalCsr> {
        Ok(match csr {
            MSTATUS => self.mstatus,
            MISA => MISA_VALUE,
            MIE => self.mie,
            MTVEC => self.mtvec,
            MSCRATCH => self.mscratch,
            MEPC => self.mepc,
            MCAUSE => self.mcause,
            MTVAL => self.mtval,
            MIP => self.mip(),
            MCYCLE | CYCLE => cpu.instret.wrapping_add(self.cycle_offset),
            MINSTRET | INSTRET => cpu.instret.wrapping_add(self.instret_offset),
            TIME => self.clint.mtime(),
            MVENDORID | MARCHID | MIMPID => 0,
            MHARTID => self.hartid,
            _ => return Err(IllegalCsr),
        })
    }

    fn write_csr(&mut self, cpu: &CpuState, csr: u16, v: u64) -> Result<(), IllegalCsr> {
        match csr {
            MSTATUS => self.mstatus = (v & (MSTATUS_MIE | MSTATUS_MPIE)) | MSTATUS_MPP,
            MISA => {} // WARL: the extension set is fixed.
            MIE => self.mie = v & (MIP_MSIP | MIP_MTIP | MIP_MEIP),
            // Modes 0 (direct) and 1 (vectored); the reserved modes leave mtvec unchanged.
            MTVEC if v & 3 < 2 => self.mtvec = v,
            MTVEC => {}
            MSCRATCH => self.mscratch = v,
            // IALIGN is 16 once compressed instructions exist; bit 0 is always zero.
            MEPC => self.mepc = v & !1,
            MCAUSE => self.mcause = v,
            MTVAL => self.mtval = v,
            MIP => {} // MSIP, MTIP, MEIP and SEIP are driven by the CLINT and the PLIC.
            // The write happens before the CSR instruction retires, so the count it leaves is
            // `v` plus that one instruction; cpu.instret does not yet include it.
            MCYCLE => self.cycle_offset = v.wrapping_sub(cpu.instret),
            MINSTRET => self.instret_offset = v.wrapping_sub(cpu.instret),
            _ => return Err(IllegalCsr),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hart() -> (Hart, CpuState) {
        let cpu = CpuState { privilege: PRIV_M, ..CpuState::default() };
        (Hart::new(0, Clint::new(), ExternalIrq::default()), cpu)
    }

    #[test]
    fn trap_and_mret_round_trip() {
        let (mut h, mut cpu) = hart();
        h.mtvec = 0x8000_0100;
        h.mstatus |= MSTATUS_MIE;
        cpu.pc = 0x8000_0040;
        h.raise(&mut cpu, Exception::EcallM, 0);
        assert_eq!((cpu.pc, h.mepc, h.mcause), (0x8000_0100, 0x8000_0040, 11));
        assert_eq!(h.mstatus & (MSTATUS_MIE | MSTATUS_MPIE), MSTATUS_MPIE);
        h.mepc += 4;
        h.mret(&mut cpu);
        assert_eq!(cpu.pc, 0x8000_0044);
        assert_eq!(h.mstatus & MSTATUS_MIE, MSTATUS_MIE);
        assert_eq!(cpu.instret, 1);
    }

    #[test]
    fn vectored_interrupts_offset_by_cause() {
        let (mut h, mut cpu) = hart();
        h.mtvec = 0x8000_0001;
        h.take_interrupt(&mut cpu, 7);
        assert_eq!(cpu.pc, 0x8000_001c);
        assert_eq!(h.mcause, (1 << 63) | 7);
    }

    #[test]
    fn csr_access_rules() {
        let (mut h, cpu) = hart();
        assert_eq!(h.csr_op(&cpu, 1, 5, MSCRATCH as u64), Ok(0));
        assert_eq!(h.csr_op(&cpu, 2, 2, MSCRATCH as u64), Ok(5));
        assert_eq!(h.csr_op(&cpu, 3, 1, MSCRATCH as u64), Ok(7));
        assert_eq!(h.mscratch, 6);
        // Reading a read-only CSR is fine; writing it is illegal.
        assert_eq!(h.csr_op(&cpu, 2, 0, MHARTID as u64 | CSR_NO_WRITE), Ok(0));
        assert_eq!(h.csr_op(&cpu, 1, 0, MHARTID as u64), Err(IllegalCsr));
        assert_eq!(h.csr_op(&cpu, 2, 0, 0x7c0), Err(IllegalCsr), "unimplemented CSR");
        assert_eq!(h.csr_op(&cpu, 2, 0, MISA as u64 | CSR_NO_WRITE), Ok(MISA_VALUE));
    }

    #[test]
    fn minstret_write_offsets_the_counter() {
        let (mut h, mut cpu) = hart();
        cpu.instret = 100;
        h.csr_op(&cpu, 1, 5, MINSTRET as u64).unwrap();
        cpu.instret = 110;
        assert_eq!(h.csr_op(&cpu, 2, 0, MINSTRET as u64 | CSR_NO_WRITE), Ok(15));
    }

    #[test]
    fn meip_and_seip_come_from_the_plic_and_only_meip_can_be_enabled() {
        use crate::bus::MmioDevice;
        use crate::devices::plic::{self, MIP_SEIP};
        use std::sync::{Arc, atomic::AtomicU32};
        let mut p = plic::Plic::new(&[Arc::new(AtomicU32::new(0))], Arc::default());
        let mut h = Hart::new(0, Clint::new(), p.hart_lines(0));
        let cpu = CpuState { privilege: PRIV_M, ..CpuState::default() };
        h.mstatus |= MSTATUS_MIE;
        h.csr_op(&cpu, 1, u64::MAX, MIE as u64).unwrap();
        assert_eq!(h.mie, MIP_MSIP | MIP_MTIP | MIP_MEIP, "no SEIE without S-mode");
        // Source 10 at priority 1 for both contexts of hart 0 (M = 0, S = 1), line high.
        p.write(40, 1, 4).unwrap();
        p.write(0x2000, 1 << 10, 4).unwrap();
        p.write(0x2080, 1 << 10, 4).unwrap();
        p.set_level(10, true);
        assert_eq!(h.csr_op(&cpu, 2, 0, MIP as u64 | CSR_NO_WRITE), Ok(MIP_MEIP | MIP_SEIP));
        assert_eq!(h.interrupt_to_take(), Some(11));
        // Claimed by the M context: both outputs drop.
        assert_eq!(p.read(0x20_0004, 4).unwrap(), 10);
        assert_eq!(h.mip(), 0);
        // The S context alone: readable in mip, never taken, never ends wfi.
        p.write(0x2000, 0, 4).unwrap();
        p.write(0x20_0004, 10, 4).unwrap();
        assert_eq!(h.mip(), MIP_SEIP);
        assert_eq!((h.interrupt_to_take(), h.wake_pending()), (None, false));
    }
}
