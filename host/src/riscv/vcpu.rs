//! The host side of an engine run: the [`HostCalls`] table and what each entry does.
//!
//! Engines call back here to translate code, to reach device memory, and for the helper calls the
//! RISC-V frontend emits. Errors that must stop the VM are parked in [`VcpuContext::error`] and the
//! engine is told to exit with `ExitReason::HostError`.

use crate::activity::Activity;
use crate::bus::{Bus, BusError};
use crate::devices::clint::Clint;
use crate::devices::syscon::PowerState;
use crate::riscv::hart::{Exception, Hart, PRIV_S, PRIV_U};
use crate::riscv::helper::Helper;
use crate::riscv::lower;
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use vm_plugin_api::{CpuState, ExitReason, Fetched, Flow, GuestRam, HostCalls, HostResult, VmError};

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
    /// Asks the engine to return at its next block boundary.
    pub exit_request: Arc<AtomicU32>,
    /// Where a device access in progress is recorded.
    pub activity: Arc<Activity>,
    /// The timer, told the instructions retired at every host call (the instruction clock).
    pub clint: Clint,
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
        // SAFETY (reading fields): no run is in flight while the table is being built.
        let (ram, flag) = unsafe {
            let c = &*self.0.get();
            (c.ram, Arc::as_ptr(&c.exit_request))
        };
        // SAFETY: the pointer is to this SharedVcpu, which the run loop keeps alive (an Arc clone
        // travels with every run) and which only the running engine uses during the run.
        unsafe { HostCalls::new(self.0.get().cast(), ram, flag, translate, load, store, helper) }
    }
}

/// Runs a host call with panics contained: a bug in the host must not unwind into an engine.
fn contained(ctx: *mut c_void, f: impl FnOnce(&mut VcpuContext) -> HostResult) -> HostResult {
    // SAFETY: `ctx` is the VcpuContext the table was built for, used only by the running engine.
    let c = unsafe { &mut *(ctx as *mut VcpuContext) };
    match catch_unwind(AssertUnwindSafe(|| f(c))) {
        Ok(r) => r,
        Err(_) => {
            // SAFETY: as above; the closure that panicked no longer holds the reference.
            let c = unsafe { &mut *(ctx as *mut VcpuContext) };
            c.error = Some(VmError::new(vm_plugin_api::ErrorKind::Panic, "internal error in a host call"));
            HostResult::flow(Flow::Exit(ExitReason::HostError))
        }
    }
}

unsafe extern "C" fn translate(ctx: *mut c_void, cpu: &mut CpuState, pc: u64) -> Fetched {
    let mut block = None;
    let r = contained(ctx, |c| {
        let ram = c.ram;
        match lower::translate(pc, &mut |a| ram.load(a, 2).map(|v| v as u16)) {
            Some(b) => {
                block = Some(b);
                HostResult::value(0)
            }
            // mtval names the part that faulted: the second halfword of a 4-byte instruction
            // that straddles into unmapped memory.
            None => {
                let tval = if ram.load(pc, 2).is_some() { pc.wrapping_add(2) } else { pc };
                c.exception(cpu, Exception::FetchAccess, tval)
            }
        }
    });
    match block {
        Some(b) => Fetched::Block(b),
        None => Fetched::Flow(r.flow),
    }
}

unsafe extern "C" fn load(ctx: *mut c_void, cpu: &mut CpuState, addr: u64, size: u8) -> HostResult {
    contained(ctx, |c| {
        c.clint.observe_instret(cpu.instret);
        c.activity.mmio_begin(addr);
        let r = c.bus.read(addr, size);
        c.activity.mmio_end();
        match r {
            Ok(v) => HostResult::value(v),
            Err(e) => c.bus_fault(cpu, e, Exception::LoadAccess, addr),
        }
    })
}

unsafe extern "C" fn store(
    ctx: *mut c_void,
    cpu: &mut CpuState,
    addr: u64,
    size: u8,
    value: u64,
) -> HostResult {
    contained(ctx, |c| {
        c.clint.observe_instret(cpu.instret);
        c.activity.mmio_begin(addr);
        let r = c.bus.write(addr, size, value);
        c.activity.mmio_end();
        match r {
            Ok(()) if c.power.get().is_some() => {
                cpu.instret += 1;
                HostResult::flow(Flow::Exit(ExitReason::Halt))
            }
            // A device write (msip, mtimecmp) may have made an interrupt takeable: it is taken
            // right after the store retires, without leaving the engine.
            Ok(()) => match c.hart.interrupt_to_take() {
                Some(code) => match c.ram.load(cpu.pc, 2) {
                    Some(half) => {
                        cpu.pc = cpu.pc.wrapping_add(if half & 3 == 3 { 4 } else { 2 });
                        cpu.instret += 1;
                        c.hart.take_interrupt(cpu, code);
                        HostResult::flow(Flow::Redirect)
                    }
                    None => {
                        c.exit_request.store(1, Ordering::SeqCst);
                        HostResult::value(0)
                    }
                },
                None => HostResult::value(0),
            },
            Err(e) => c.bus_fault(cpu, e, Exception::StoreAccess, addr),
        }
    })
}

unsafe extern "C" fn helper(ctx: *mut c_void, cpu: &mut CpuState, id: u32, a: u64, b: u64) -> HostResult {
    contained(ctx, |c| {
        c.clint.observe_instret(cpu.instret);
        c.helper(cpu, id, a, b)
    })
}

impl VcpuContext {
    fn helper(&mut self, cpu: &mut CpuState, id: u32, a: u64, b: u64) -> HostResult {
        let Some(h) = Helper::from_id(id) else {
            self.error = Some(VmError::engine(format!("engine called unknown helper {id}")));
            return HostResult::flow(Flow::Exit(ExitReason::HostError));
        };
        match h {
            Helper::CsrRw | Helper::CsrRs | Helper::CsrRc => match self.hart.csr_op(cpu, id, a, b) {
                Ok(old) => {
                    // A write may have enabled an interrupt that is already pending.
                    if self.hart.interrupt_to_take().is_some() {
                        self.exit_request.store(1, Ordering::SeqCst);
                    }
                    HostResult::value(old)
                }
                Err(_) => self.illegal(cpu),
            },
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
                    return self.illegal(cpu);
                }
                // An interrupt that the return unmasks (or that the new privilege may take) is
                // taken before the instruction at the return address.
                if let Some(code) = self.hart.interrupt_to_take() {
                    self.hart.take_interrupt(cpu, code);
                }
                HostResult::flow(Flow::Redirect)
            }
            Helper::Wfi if !self.hart.wfi_allowed() => self.illegal(cpu),
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
                Ok(()) => HostResult::value(0),
                Err(_) => self.illegal(cpu),
            },
            Helper::Illegal => self.exception(cpu, Exception::Illegal, a),
        }
    }

    /// Illegal instruction raised by a helper (CSR access, xRET, `wfi`, `sfence.vma`), with the
    /// instruction's bits in tval as QEMU puts them. Every such instruction is 32 bits long and
    /// was just fetched from RAM at `cpu.pc`, so the bits are read back from there (until
    /// plugin-api 0.2, when the pc is virtual and the translation carries them).
    fn illegal(&mut self, cpu: &mut CpuState) -> HostResult {
        let bits = self.ram.load(cpu.pc, 4).unwrap_or(0);
        self.exception(cpu, Exception::Illegal, bits)
    }

    fn bus_fault(&mut self, cpu: &mut CpuState, e: BusError, kind: Exception, addr: u64) -> HostResult {
        match e {
            BusError::Unmapped(at) => {
                // mtval names the first byte that faulted, as on QEMU: what the bus reports, or,
                // for an access that starts in RAM (so it runs out of RAM: the engine does every
                // access that fits), the first byte past RAM.
                let ram = self.ram;
                let tval = if ram.host_ptr(addr, 1).is_some() { ram.base.wrapping_add(ram.size) } else { at };
                self.exception(cpu, kind, tval)
            }
            e @ BusError::Device(..) => {
                self.error = Some(e.into_vm_error());
                HostResult::flow(Flow::Exit(ExitReason::HostError))
            }
        }
    }

    /// Raises `e` at `cpu.pc`. A trap vector outside RAM would fault forever, so the VM stops with
    /// an error that says what the guest did instead.
    pub fn exception(&mut self, cpu: &mut CpuState, e: Exception, tval: u64) -> HostResult {
        let pc = cpu.pc;
        self.hart.raise(cpu, e, tval);
        if self.ram.load(cpu.pc, 2).is_none() {
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
