//! The host side of an engine run: the [`HostCalls`] table and what each entry does.
//!
//! Engines reach RAM through the TLB in `CpuState`; every miss comes here. The host translates
//! the virtual address (Bare, M-mode or an Sv39/Sv48 walk with A/D updates), fills the TLB for RAM
//! pages, performs the access (RAM, or a device on the bus), or raises the architectural fault.
//! Translation marks the pages code lies on, and stores that reach a marked page invalidate its
//! code (`code_pages`). Errors that must stop the VM are parked in [`VcpuContext::error`] and the
//! engine is told to exit with `ExitReason::HostError`.

use crate::activity::Activity;
use crate::bus::{Bus, BusError};
use crate::code_pages::CodePages;
use crate::devices::clint::Clint;
use crate::devices::syscon::PowerState;
use crate::riscv::code_mappings::CodeMappings;
use crate::riscv::fpu;
use crate::riscv::hart::{Exception, Hart, PRIV_M, PRIV_S, PRIV_U};
use crate::riscv::helper::{CSR_RD_SHIFT, HELPER_COUNT, Helper};
use crate::riscv::lower;
use crate::riscv::mmu::{self, PteMemory};
use crate::riscv::pmp::{Pmp, PmpAccess};
use crate::riscv::tlb::{self, Fill, Tlb};
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use vm_plugin_api::cpu::{NO_RESERVATION, PAGE_MASK, PAGE_SIZE, attn};
use vm_plugin_api::ir::{NO_PAGE, eval_amo};
use vm_plugin_api::{
    AtomicKind, AtomicReq, CpuState, ExitReason, Fetched, Flow, GuestRam, HelperEntry, HelperFlags,
    HostCalls, HostResult, MemAccess, MemoryOrder, VmError,
};

/// Everything the host calls need while an engine runs.
pub struct VcpuContext {
    /// Privileged state.
    pub hart: Hart,
    /// Guest RAM.
    pub ram: GuestRam,
    /// Devices.
    pub bus: Arc<Bus>,
    /// Set by the test/poweroff device.
    pub power: PowerState,
    /// Why the last run ended with `HostError`.
    pub error: Option<VmError>,
    /// This hart's attention word (`CpuState::attention` points at it).
    pub attention: Arc<AtomicU32>,
    /// Where a device access in progress is recorded.
    pub activity: Arc<Activity>,
    /// The timer, told the instructions retired at every host call (the instruction clock).
    pub clint: Clint,
    /// This hart's TLB tables.
    pub tlb: Tlb,
    /// Which RAM pages hold translated code.
    pub code: Arc<CodePages>,
    /// Which hart this is (its index in `code`'s queues).
    pub hart_index: usize,
    /// The virtual mappings the engine's translations were fetched through.
    pub code_mappings: CodeMappings,
}

/// A [`VcpuContext`] shared with the thread an engine runs on.
///
/// The run loop touches the context only while no engine run is in flight, and an engine touches
/// it only through the host calls during its run, so accesses never overlap. The `Arc` keeps the
/// context alive for as long as a run could still use it.
pub struct SharedVcpu(UnsafeCell<VcpuContext>);

// SAFETY: see the type's docs: access is serialised by the run loop.
unsafe impl Sync for SharedVcpu {}
// SAFETY: every field of VcpuContext is Send.
unsafe impl Send for SharedVcpu {}

impl SharedVcpu {
    /// Wraps a context.
    pub fn new(ctx: VcpuContext) -> Arc<SharedVcpu> {
        Arc::new(SharedVcpu(UnsafeCell::new(ctx)))
    }

    /// The context, for the run loop.
    ///
    /// # Safety
    /// No engine run using this context may be in flight.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut VcpuContext {
        // SAFETY: exclusive per the caller's contract.
        unsafe { &mut *self.0.get() }
    }

    /// The host-call table for an engine run.
    pub fn host_calls(self: &Arc<Self>) -> HostCalls {
        // SAFETY: the pointer is to this SharedVcpu, which the run loop keeps alive (an Arc clone
        // travels with every run) and which only the running engine uses during the run.
        unsafe { HostCalls::new(self.0.get().cast(), translate, load, store, atomic, &HELPERS) }
    }
}

/// Runs a host call with panics contained: a bug in the host must not unwind into an engine.
fn contained(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    f: impl FnOnce(&mut VcpuContext, &mut CpuState) -> HostResult,
) -> HostResult {
    // SAFETY: `ctx` is the VcpuContext the table was built for, used only by the running engine.
    let c = unsafe { &mut *(ctx as *mut VcpuContext) };
    c.clint.observe_instret(cpu.instret);
    match catch_unwind(AssertUnwindSafe(|| f(c, cpu))) {
        Ok(r) => r,
        Err(_) => {
            // SAFETY: as above; the closure that panicked no longer holds the reference.
            let c = unsafe { &mut *(ctx as *mut VcpuContext) };
            c.error = Some(VmError::new(vm_plugin_api::ErrorKind::Panic, "internal error in a host call"));
            HostResult::flow(Flow::Exit(ExitReason::HostError))
        }
    }
}

/// Page-table memory for the walker: RAM that PMP lets S-mode read (and write, for A/D updates),
/// as the walk's implicit accesses are S-mode's; anything else is an access fault.
struct RamPtes<'a> {
    ram: GuestRam,
    pmp: &'a Pmp,
}

impl PteMemory for RamPtes<'_> {
    fn read_pte(&self, paddr: u64) -> Option<u64> {
        if !self.pmp.allows(paddr, 8, PmpAccess::Read, PRIV_S) {
            return None;
        }
        self.ram.load_atomic(paddr, 8, MemoryOrder::Acquire)
    }
    fn cas_pte(&self, paddr: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
        if !self.pmp.allows(paddr, 8, PmpAccess::Write, PRIV_S) {
            return None;
        }
        let old = self.ram.compare_exchange(paddr, 8, current, new, MemoryOrder::SeqCst)?;
        Some(if old == current { Ok(old) } else { Err(old) })
    }
}

/// The privilege PMP checks an access of MMU mode `mmu` with.
fn pmp_privilege(mmu: u8) -> u8 {
    match mmu {
        tlb::MMU_U => PRIV_U,
        tlb::MMU_S | tlb::MMU_S_SUM => PRIV_S,
        _ => PRIV_M,
    }
}

/// Where an access goes once translated.
#[derive(Debug, Clone, Copy)]
struct Target {
    paddr: u64,
    /// Host address of the byte, when it is RAM.
    host: Option<*mut u8>,
}

unsafe extern "C" fn translate(ctx: *mut c_void, cpu: &mut CpuState, pc: u64) -> Fetched {
    let mut block = None;
    let r = contained(ctx, cpu, |c, cpu| match c.translate_block(cpu, pc) {
        Ok(b) => {
            block = Some(b);
            HostResult::value(0)
        }
        Err((e, tval)) => {
            cpu.pc = pc;
            c.exception(cpu, e, tval)
        }
    });
    match block {
        Some(b) => Fetched::Block(b),
        None => Fetched::Flow(r.flow),
    }
}

unsafe extern "C" fn load(ctx: *mut c_void, cpu: &mut CpuState, addr: u64, access: MemAccess) -> HostResult {
    contained(ctx, cpu, |c, cpu| c.load(cpu, addr, access))
}

unsafe extern "C" fn store(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    addr: u64,
    access: MemAccess,
    value: u64,
) -> HostResult {
    contained(ctx, cpu, |c, cpu| c.store(cpu, addr, access, value))
}

unsafe extern "C" fn atomic(ctx: *mut c_void, cpu: &mut CpuState, req: &AtomicReq) -> HostResult {
    contained(ctx, cpu, |c, cpu| c.atomic(cpu, req))
}

/// One table entry per frontend helper; entry 0 is not a helper.
macro_rules! helper_table {
    ($($id:ident),*) => {
        static HELPERS: [HelperEntry; HELPER_COUNT] = [
            HelperEntry { func: no_helper, flags: HelperFlags(0) },
            $(HelperEntry {
                func: {
                    unsafe extern "C" fn f(
                        ctx: *mut c_void, cpu: &mut CpuState, a: u64, b: u64, c: u64, imm: u64,
                    ) -> HostResult {
                        contained(ctx, cpu, |v, cpu| v.helper(cpu, Helper::$id, [a, b, c], imm))
                    }
                    f
                },
                flags: Helper::$id.flags(),
            }),*
        ];
    };
}

helper_table!(CsrRw, CsrRs, CsrRc, Ecall, Ebreak, Mret, Sret, Wfi, SfenceVma, Illegal, Fp, FpDyn, FpDirty);

const _: () = assert!(Helper::FpDirty as usize == HELPER_COUNT - 1);

unsafe extern "C" fn no_helper(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    _: u64,
    _: u64,
    _: u64,
    _: u64,
) -> HostResult {
    contained(ctx, cpu, |c, _| {
        c.error = Some(VmError::engine("engine called helper 0, which the frontend never emits"));
        HostResult::flow(Flow::Exit(ExitReason::HostError))
    })
}

impl VcpuContext {
    /// The engine must drop every translation that depends on virtual mappings (at its next
    /// block boundary, before it translates again).
    fn flush_virtual_code(&mut self) {
        self.code_mappings.clear();
        self.attention.fetch_or(attn::FLUSH_VIRT, Ordering::SeqCst);
    }

    /// Translates a virtual address for an `access` of `size` bytes in MMU mode `mmu`, and checks
    /// the physical range against PMP (a denial is an access fault).
    fn walk(
        &self,
        vaddr: u64,
        size: u64,
        mmu: u8,
        access: mmu::Access,
    ) -> Result<(Target, mmu::Translation), mmu::Fault> {
        // M-mode (or MPRV to M) is never translated.
        let t = if mmu == tlb::MMU_M {
            mmu::Translation::identity(vaddr)
        } else {
            let privilege = if mmu == tlb::MMU_U { mmu::Privilege::User } else { mmu::Privilege::Supervisor };
            let walk = mmu::Walk {
                satp: self.hart.satp,
                access,
                privilege,
                sum: mmu == tlb::MMU_S_SUM,
                mxr: self.hart.mstatus & crate::riscv::csr::MSTATUS_MXR != 0,
                mem: &RamPtes { ram: self.ram, pmp: self.hart.pmp() },
            };
            mmu::translate(&walk, vaddr)?
        };
        let kind = match access {
            mmu::Access::Load => PmpAccess::Read,
            mmu::Access::Store => PmpAccess::Write,
            mmu::Access::Fetch => PmpAccess::Exec,
        };
        if !self.hart.pmp().allows(t.paddr, size, kind, pmp_privilege(mmu)) {
            return Err(mmu::Fault { kind: mmu::FaultKind::Access, access, tval: vaddr });
        }
        Ok((Target { paddr: t.paddr, host: self.ram.host_ptr(t.paddr, 1) }, t))
    }

    /// The rights the TLB may cache for the page of `t` in mode `mmu`: the walk's, within what PMP
    /// grants for the whole page, or none when PMP treats parts of the page differently.
    fn cacheable(&self, t: &mmu::Translation, mmu: u8) -> Option<(bool, bool, bool)> {
        let pmp = self.hart.pmp();
        let page = t.paddr & PAGE_MASK;
        if !pmp.uniform(page) {
            return None;
        }
        let p = pmp_privilege(mmu);
        let ok = |a| pmp.allows(page, PAGE_SIZE, a, p);
        Some((
            t.allowed.read && ok(PmpAccess::Read),
            t.cache_write() && ok(PmpAccess::Write),
            t.allowed.exec && ok(PmpAccess::Exec),
        ))
    }

    /// Translates and, for RAM, caches the page in the TLB. A device page is never cached, nor a
    /// page that PMP splits.
    fn resolve(&mut self, vaddr: u64, size: u64, mmu: u8, access: mmu::Access) -> Result<Target, mmu::Fault> {
        let (target, t) = self.walk(vaddr, size, mmu, access)?;
        if let Some(host) = target.host
            && let Some((read, write, exec)) = self.cacheable(&t, mmu)
        {
            let rights = Fill { read, write, exec, code: self.code.is_code(target.paddr) };
            let host_page = (host as u64) & PAGE_MASK;
            let superpage = t.page_size != mmu::PageSize::Size4K;
            self.tlb.fill(mmu, vaddr, host_page, rights, superpage);
        }
        Ok(target)
    }

    fn translate_block(
        &mut self,
        cpu: &mut CpuState,
        pc: u64,
    ) -> Result<vm_plugin_api::IrBlock, (Exception, u64)> {
        let mode = cpu.fetch_mmu;
        // Pages fetched from, in order: (virtual page, physical page, host page address).
        let mut pages: Vec<(u64, u64, u64)> = Vec::with_capacity(2);
        let mut fault = None;
        let block = {
            let this = &*self;
            let mut fetch16 = |a: u64| {
                let vpage = a & PAGE_MASK;
                let host_page = match pages.iter().find(|p| p.0 == vpage) {
                    // A page PMP splits is checked halfword by halfword.
                    Some(p) if !this.hart.pmp().uniform(p.1) => {
                        match this.walk(a, 2, mode, mmu::Access::Fetch) {
                            Ok(_) => p.2,
                            Err(f) => {
                                fault = Some((Exception::of_fault(&f), f.tval));
                                return None;
                            }
                        }
                    }
                    Some(p) => p.2,
                    None => match this.walk(a, 2, mode, mmu::Access::Fetch) {
                        Ok((Target { paddr, host: Some(host) }, _)) => {
                            let host_page = host as u64 & PAGE_MASK;
                            pages.push((vpage, paddr & PAGE_MASK, host_page));
                            host_page
                        }
                        // Code runs from RAM only.
                        Ok(_) => {
                            fault = Some((Exception::FetchAccess, a));
                            return None;
                        }
                        Err(f) => {
                            fault = Some((Exception::of_fault(&f), f.tval));
                            return None;
                        }
                    },
                };
                let p = (host_page + (a & !PAGE_MASK)) as *const u16;
                // SAFETY: the walk found the page in RAM and `a` is 2-byte aligned (pc always is),
                // so the halfword lies inside the page.
                Some(u16::from_le(unsafe { p.read_unaligned() }))
            };
            lower::translate(pc, cpu.tb_flags, &mut fetch16)
        };
        let Some(mut block) = block else {
            return Err(fault.unwrap_or((Exception::FetchAccess, pc)));
        };
        // Only the pages the block's instructions lie on: a failed fetch past them added none.
        block.phys_pc = pages[0].1 | (pc & !PAGE_MASK);
        block.pages = [pages[0].1, pages.get(1).map_or(NO_PAGE, |p| p.1)];
        let (start, end) = (pc, pc.wrapping_add(u64::from(block.len)));
        for &(vpage, ppage, host_page) in &pages {
            // The block's bytes on this page.
            let from = start.max(vpage);
            let to = end.min(vpage.wrapping_add(PAGE_SIZE));
            if from < to && self.code.mark(ppage + (from - vpage), to - from) {
                self.tlb.protect_code(host_page);
                // Other harts may cache a write entry for the page: they re-protect it at their
                // next block boundary.
                self.code.protect_elsewhere(self.hart_index);
            }
            // The fetch TLB entry, so an engine can find code for a virtual pc without a call.
            let walked = self.walk(vpage, 1, mode, mmu::Access::Fetch);
            if let Ok((_, t)) = &walked
                && let Some((read, write, exec)) = self.cacheable(t, mode)
            {
                let rights = Fill { read, write, exec, code: true };
                self.tlb.fill(mode, vpage, host_page, rights, t.page_size != mmu::PageSize::Size4K);
            }
            // M-mode fetches are physical: nothing a fence changes.
            if mode != tlb::MMU_M {
                let size = walked.map_or(mmu::PageSize::Size4K, |(_, t)| t.page_size);
                self.code_mappings.record(vpage, size);
            }
        }
        Ok(block)
    }

    fn load(&mut self, cpu: &mut CpuState, vaddr: u64, access: MemAccess) -> HostResult {
        let size = access.size;
        if access.aligned() && !vaddr.is_multiple_of(u64::from(size)) {
            return self.exception(cpu, Exception::LoadMisaligned, vaddr);
        }
        // A page-crossing access to RAM is done byte by byte: each page is translated (and may
        // fault, with tval the first byte on it that faults) on its own. One that starts on a
        // device page goes to the bus whole, which faults it at the first byte past the window.
        if crosses_page(vaddr, size) && self.starts_in_ram(vaddr, access.mmu, mmu::Access::Load) {
            let mut v = 0u64;
            for i in 0..u64::from(size) {
                let byte = self.load(cpu, vaddr.wrapping_add(i), MemAccess { size: 1, ..access });
                if byte.flow != Flow::Continue {
                    return byte;
                }
                v |= (byte.value & 0xff) << (8 * i);
            }
            return HostResult::value(v);
        }
        let t = match self.resolve(vaddr, u64::from(size), access.mmu, mmu::Access::Load) {
            Ok(t) => t,
            Err(f) => return self.exception(cpu, Exception::of_fault(&f), f.tval),
        };
        if let Some(host) = t.host {
            return HostResult::value(read_host(host, size));
        }
        self.activity.mmio_begin(t.paddr);
        let r = self.bus.read(t.paddr, size);
        self.activity.mmio_end();
        match r {
            Ok(v) => HostResult::value(v),
            Err(e) => self.bus_fault(cpu, e, Exception::LoadAccess, vaddr.wrapping_sub(t.paddr)),
        }
    }

    fn store(&mut self, cpu: &mut CpuState, vaddr: u64, access: MemAccess, value: u64) -> HostResult {
        let size = access.size;
        if access.aligned() && !vaddr.is_multiple_of(u64::from(size)) {
            return self.exception(cpu, Exception::StoreMisaligned, vaddr);
        }
        if crosses_page(vaddr, size) && self.starts_in_ram(vaddr, access.mmu, mmu::Access::Store) {
            // Both pages are checked before any byte is written, so a fault stores nothing.
            let last = vaddr.wrapping_add(u64::from(size) - 1);
            for probe in [vaddr, last] {
                if let Err(f) = self.walk(probe, 1, access.mmu, mmu::Access::Store) {
                    return self.exception(cpu, Exception::of_fault(&f), f.tval);
                }
            }
            for i in 0..u64::from(size) {
                let r =
                    self.store(cpu, vaddr.wrapping_add(i), MemAccess { size: 1, ..access }, value >> (8 * i));
                if r.flow != Flow::Continue {
                    return r;
                }
            }
            return HostResult::value(0);
        }
        let t = match self.resolve(vaddr, u64::from(size), access.mmu, mmu::Access::Store) {
            Ok(t) => t,
            Err(f) => return self.exception(cpu, Exception::of_fault(&f), f.tval),
        };
        if let Some(host) = t.host {
            write_host(host, size, value);
            self.ram_written(t.paddr, host, u64::from(size));
            return HostResult::value(0);
        }
        self.activity.mmio_begin(t.paddr);
        let r = self.bus.write(t.paddr, size, value);
        self.activity.mmio_end();
        match r {
            Ok(()) if self.power.get().is_some() => {
                cpu.instret += 1;
                HostResult::flow(Flow::Exit(ExitReason::Halt))
            }
            // A device write (msip, mtimecmp) may have made an interrupt takeable: it is taken
            // right after the store retires, without leaving the engine.
            Ok(()) => match self.hart.interrupt_to_take() {
                Some(code) => match self.insn_len(cpu) {
                    Some(len) => {
                        cpu.pc = cpu.pc.wrapping_add(len);
                        cpu.instret += 1;
                        self.hart.take_interrupt(cpu, code);
                        HostResult::flow(Flow::Redirect)
                    }
                    None => {
                        self.attention.fetch_or(attn::IRQ, Ordering::SeqCst);
                        HostResult::value(0)
                    }
                },
                None => HostResult::value(0),
            },
            Err(e) => self.bus_fault(cpu, e, Exception::StoreAccess, vaddr.wrapping_sub(t.paddr)),
        }
    }

    /// Whether `vaddr` translates to RAM (a fault counts as RAM: the byte-wise path raises it).
    fn starts_in_ram(&self, vaddr: u64, mmu: u8, access: mmu::Access) -> bool {
        self.walk(vaddr, 1, mmu, access).map_or(true, |(t, _)| t.host.is_some())
    }

    /// After a write to RAM: invalidates code on the page, and lets later stores to it hit.
    fn ram_written(&mut self, paddr: u64, host: *mut u8, len: u64) {
        if self.code.written(paddr, len) && !self.code.is_code(paddr) {
            self.tlb.unprotect_code(host as u64 & PAGE_MASK);
        }
    }

    /// The length of the instruction at `cpu.pc`, read back through the fetch translation.
    fn insn_len(&mut self, cpu: &CpuState) -> Option<u64> {
        let (t, _) = self.walk(cpu.pc, 1, cpu.fetch_mmu, mmu::Access::Fetch).ok()?;
        let half = read_host(t.host?, 1);
        Some(if half & 3 == 3 { 4 } else { 2 })
    }

    fn atomic(&mut self, cpu: &mut CpuState, req: &AtomicReq) -> HostResult {
        let (vaddr, size) = (req.addr, req.access.size);
        let sc = req.kind == AtomicKind::StoreConditional;
        // As QEMU: an SC whose address is not the reservation's fails without touching memory.
        if sc && cpu.resv_addr != vaddr {
            cpu.resv_addr = NO_RESERVATION;
            return HostResult::value(1);
        }
        let lr = req.kind == AtomicKind::LoadReserved;
        let (misaligned, access_fault, access) = if lr {
            (Exception::LoadMisaligned, Exception::LoadAccess, mmu::Access::Load)
        } else {
            (Exception::StoreMisaligned, Exception::StoreAccess, mmu::Access::Store)
        };
        if !matches!(size, 4 | 8) || !vaddr.is_multiple_of(u64::from(size)) {
            return self.exception(cpu, misaligned, vaddr);
        }
        let t = match self.resolve(vaddr, u64::from(size), req.access.mmu, access) {
            Ok(t) => t,
            Err(f) => return self.exception(cpu, Exception::of_fault(&f), f.tval),
        };
        // Atomics on device memory are not supported by any device here: an access fault, as
        // QEMU gives for MMIO without atomic support.
        let Some(host) = t.host else { return self.exception(cpu, access_fault, vaddr) };
        let ram = self.ram;
        let sext = |v: u64| if size == 4 { v as u32 as i32 as i64 as u64 } else { v };
        let mask = if size == 4 { 0xffff_ffff } else { u64::MAX };
        match req.kind {
            AtomicKind::LoadReserved => {
                let v = sext(ram.load_atomic(t.paddr, size, req.order).unwrap_or(0));
                cpu.resv_addr = vaddr;
                cpu.resv_value = v;
                HostResult::value(v)
            }
            AtomicKind::StoreConditional => {
                cpu.resv_addr = NO_RESERVATION;
                let expected = cpu.resv_value & mask;
                let old = ram.compare_exchange(t.paddr, size, expected, req.src & mask, req.order);
                if old == Some(expected) {
                    self.ram_written(t.paddr, host, u64::from(size));
                    HostResult::value(0)
                } else {
                    HostResult::value(1)
                }
            }
            AtomicKind::Amo => {
                let mut old = ram.load_atomic(t.paddr, size, MemoryOrder::Relaxed).unwrap_or(0);
                loop {
                    let new = eval_amo(req.op, size, old, req.src) & mask;
                    match ram.compare_exchange(t.paddr, size, old, new, req.order) {
                        Some(v) if v == old => break,
                        Some(v) => old = v,
                        None => return self.exception(cpu, access_fault, vaddr),
                    }
                }
                self.ram_written(t.paddr, host, u64::from(size));
                HostResult::value(sext(old))
            }
        }
    }

    fn helper(&mut self, cpu: &mut CpuState, h: Helper, [a, b, c]: [u64; 3], imm: u64) -> HostResult {
        let bits = if matches!(h, Helper::CsrRw | Helper::CsrRs | Helper::CsrRc | Helper::Fp | Helper::FpDyn)
        {
            imm >> 32
        } else {
            imm & 0xffff_ffff
        };
        match h {
            Helper::CsrRw | Helper::CsrRs | Helper::CsrRc => {
                let (satp, mstatus, flags, pmp) =
                    (self.hart.satp, self.hart.mstatus, cpu.tb_flags, self.hart.pmp_writes());
                let old = match self.hart.csr_op(cpu, h.id(), a, imm) {
                    Ok(old) => old,
                    Err(_) => return self.exception(cpu, Exception::Illegal, bits),
                };
                // New mappings (satp) or permissions (MXR, PMP): cached translations are stale, and
                // the block ends after this instruction, so the engine hears of it at once.
                let mxr = crate::riscv::csr::MSTATUS_MXR;
                if self.hart.satp != satp
                    || (self.hart.mstatus ^ mstatus) & mxr != 0
                    || self.hart.pmp_writes() != pmp
                {
                    self.tlb.flush();
                    self.flush_virtual_code();
                }
                // A write may have enabled an interrupt that is already pending.
                if self.hart.interrupt_to_take().is_some() {
                    self.attention.fetch_or(attn::IRQ, Ordering::SeqCst);
                }
                self.hart.sync_context(cpu);
                if cpu.tb_flags != flags {
                    // Code after this instruction must be lowered for the new context: complete
                    // the instruction here (CSR instructions are 4 bytes) and redirect.
                    cpu.set_register(((imm >> CSR_RD_SHIFT) & 31) as usize, old);
                    cpu.pc = cpu.pc.wrapping_add(4);
                    cpu.instret += 1;
                    return HostResult::flow(Flow::Redirect);
                }
                HostResult::value(old)
            }
            Helper::Ecall => {
                let e = match self.hart.privilege {
                    PRIV_U => Exception::EcallU,
                    PRIV_S => Exception::EcallS,
                    _ => Exception::EcallM,
                };
                self.exception(cpu, e, 0)
            }
            // tval 0, as QEMU 7.2 (the spec allows the pc or 0).
            Helper::Ebreak => self.exception(cpu, Exception::Breakpoint, 0),
            Helper::Mret | Helper::Sret => {
                let r = if h == Helper::Mret { self.hart.mret(cpu) } else { self.hart.sret(cpu) };
                if r.is_err() {
                    return self.exception(cpu, Exception::Illegal, bits);
                }
                // An interrupt that the return unmasks (or that the new privilege may take) is
                // taken before the instruction at the return address.
                if let Some(code) = self.hart.interrupt_to_take() {
                    self.hart.take_interrupt(cpu, code);
                }
                HostResult::flow(Flow::Redirect)
            }
            Helper::Wfi if !self.hart.wfi_allowed() => self.exception(cpu, Exception::Illegal, bits),
            Helper::Wfi => {
                cpu.pc = cpu.pc.wrapping_add(4);
                cpu.instret += 1;
                // Only a hart with nothing pending waits; otherwise `wfi` is done at once and the
                // engine goes on (into the trap handler if the interrupt is also takeable).
                if let Some(code) = self.hart.interrupt_to_take() {
                    self.hart.take_interrupt(cpu, code);
                    HostResult::flow(Flow::Redirect)
                } else if self.hart.wake_pending() {
                    HostResult::flow(Flow::Redirect)
                } else {
                    HostResult::flow(Flow::Exit(ExitReason::Wfi))
                }
            }
            Helper::SfenceVma => match self.hart.sfence_vma(a, b) {
                Ok(()) => {
                    let all_addresses = imm >> 32 & 1 != 0;
                    if all_addresses {
                        self.tlb.flush();
                        self.flush_virtual_code();
                    } else {
                        self.tlb.flush_page(a);
                        // Translations stand unless code came through the fenced mapping.
                        if self.code_mappings.covers(a) {
                            self.flush_virtual_code();
                        }
                    }
                    HostResult::value(0)
                }
                Err(_) => self.exception(cpu, Exception::Illegal, bits),
            },
            Helper::Illegal => self.exception(cpu, Exception::Illegal, bits),
            Helper::Fp | Helper::FpDyn => {
                let rm = if h == Helper::Fp { Some(fpu::static_rm(imm)) } else { fpu::dynamic_rm(cpu.fcsr) };
                let Some(rm) = rm else { return self.exception(cpu, Exception::Illegal, bits) };
                match fpu::execute(&mut cpu.fcsr, imm, rm, a, b, c) {
                    Some(v) => HostResult::value(v),
                    None => {
                        self.error =
                            Some(VmError::engine(format!("FP helper with a bad operation: imm {imm:#x}")));
                        HostResult::flow(Flow::Exit(ExitReason::HostError))
                    }
                }
            }
            // The instruction has not run: it runs again, lowered for FS = Dirty.
            Helper::FpDirty => {
                self.hart.set_fs_dirty();
                self.hart.sync_context(cpu);
                HostResult::flow(Flow::Redirect)
            }
        }
    }

    /// A failed device access. `to_virtual` turns the bus's physical address back into the
    /// guest's virtual one.
    fn bus_fault(&mut self, cpu: &mut CpuState, e: BusError, kind: Exception, to_virtual: u64) -> HostResult {
        match e {
            // tval names the first byte that faulted, as on QEMU: what the bus reports, as the
            // guest addressed it.
            BusError::Unmapped(at) => self.exception(cpu, kind, at.wrapping_add(to_virtual)),
            e @ BusError::Device(..) => {
                self.error = Some(e.into_vm_error());
                HostResult::flow(Flow::Exit(ExitReason::HostError))
            }
        }
    }

    /// Raises `e` at `cpu.pc`. A trap vector outside RAM, with no translation, would fault
    /// forever, so the VM stops with an error that says what the guest did instead. (With paging
    /// an S-mode vector is virtual: a bad one faults on, as on hardware, and a stop still ends it.)
    pub fn exception(&mut self, cpu: &mut CpuState, e: Exception, tval: u64) -> HostResult {
        let pc = cpu.pc;
        self.hart.raise(cpu, e, tval);
        let physical = self.hart.privilege == PRIV_M || self.hart.satp >> 60 == 0;
        if physical && self.ram.host_ptr(cpu.pc, 2).is_none() {
            let (name, vector) = self.hart.last_vector();
            let tval_name = if name == "stvec" { "stval" } else { "mtval" };
            self.error = Some(VmError::other(format!(
                "guest exception {e:?} at pc {pc:#x} ({tval_name} {tval:#x}) with no trap handler: {name} \
                 {vector:#x} is not in RAM"
            )));
            return HostResult::flow(Flow::Exit(ExitReason::HostError));
        }
        HostResult::flow(Flow::Redirect)
    }
}

fn crosses_page(vaddr: u64, size: u8) -> bool {
    (vaddr & (PAGE_SIZE - 1)) + u64::from(size) > PAGE_SIZE
}

fn read_host(p: *mut u8, size: u8) -> u64 {
    // SAFETY: `p` is a RAM byte whose page was just translated, and the caller checked the access
    // does not cross the page, so `size` bytes are inside the mapping.
    unsafe {
        match size {
            1 => p.read() as u64,
            2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
            4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
            _ => u64::from_le(p.cast::<u64>().read_unaligned()),
        }
    }
}

fn write_host(p: *mut u8, size: u8, v: u64) {
    // SAFETY: as in `read_host`.
    unsafe {
        match size {
            1 => p.write(v as u8),
            2 => p.cast::<u16>().write_unaligned((v as u16).to_le()),
            4 => p.cast::<u32>().write_unaligned((v as u32).to_le()),
            _ => p.cast::<u64>().write_unaligned(v.to_le()),
        }
    }
}
