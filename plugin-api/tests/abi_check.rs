//! abi_stable's own layout check, the one the host runs when it loads a plugin, applied to the
//! boundary types: each accepts itself, and a copy of `CpuState` is accepted only while it is
//! field for field the same.

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::type_layout::TypeLayout;
use vm_plugin_api::*;

fn layout<T: StableAbi>() -> &'static TypeLayout {
    <T as StableAbi>::LAYOUT
}

/// Copies of `CpuState` with the same name and package as the real one, so the check compares
/// their fields rather than stopping at the name.
mod same {
    use abi_stable::StableAbi;
    use std::sync::atomic::AtomicU32;
    use vm_plugin_api::{TlbFast, cpu::MMU_MODES};

    #[repr(C, align(64))]
    #[derive(StableAbi)]
    pub struct CpuState {
        pub pc: u64,
        pub x: [u64; 32],
        pub f: [u64; 32],
        pub instret: u64,
        pub tb_flags: u32,
        pub privilege: u8,
        pub fetch_mmu: u8,
        pub _pad: [u8; 2],
        pub hart_id: u64,
        pub resv_addr: u64,
        pub resv_value: u64,
        pub fcsr: u64,
        pub attention: *const AtomicU32,
        pub tlb: [TlbFast; MMU_MODES],
    }
}

/// `tb_flags` widened to 64 bits.
mod wider {
    use abi_stable::StableAbi;
    use std::sync::atomic::AtomicU32;
    use vm_plugin_api::{TlbFast, cpu::MMU_MODES};

    #[repr(C, align(64))]
    #[derive(StableAbi)]
    pub struct CpuState {
        pub pc: u64,
        pub x: [u64; 32],
        pub f: [u64; 32],
        pub instret: u64,
        pub tb_flags: u64,
        pub privilege: u8,
        pub fetch_mmu: u8,
        pub _pad: [u8; 2],
        pub hart_id: u64,
        pub resv_addr: u64,
        pub resv_value: u64,
        pub fcsr: u64,
        pub attention: *const AtomicU32,
        pub tlb: [TlbFast; MMU_MODES],
    }
}

/// `privilege` and `fetch_mmu` swapped: same size, same types, different meaning.
mod swapped {
    use abi_stable::StableAbi;
    use std::sync::atomic::AtomicU32;
    use vm_plugin_api::{TlbFast, cpu::MMU_MODES};

    #[repr(C, align(64))]
    #[derive(StableAbi)]
    pub struct CpuState {
        pub pc: u64,
        pub x: [u64; 32],
        pub f: [u64; 32],
        pub instret: u64,
        pub tb_flags: u32,
        pub fetch_mmu: u8,
        pub privilege: u8,
        pub _pad: [u8; 2],
        pub hart_id: u64,
        pub resv_addr: u64,
        pub resv_value: u64,
        pub fcsr: u64,
        pub attention: *const AtomicU32,
        pub tlb: [TlbFast; MMU_MODES],
    }
}

/// Without the 64-byte alignment (same size, same fields).
mod less_aligned {
    use abi_stable::StableAbi;
    use std::sync::atomic::AtomicU32;
    use vm_plugin_api::{TlbFast, cpu::MMU_MODES};

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct CpuState {
        pub pc: u64,
        pub x: [u64; 32],
        pub f: [u64; 32],
        pub instret: u64,
        pub tb_flags: u32,
        pub privilege: u8,
        pub fetch_mmu: u8,
        pub _pad: [u8; 2],
        pub hart_id: u64,
        pub resv_addr: u64,
        pub resv_value: u64,
        pub fcsr: u64,
        pub attention: *const AtomicU32,
        pub tlb: [TlbFast; MMU_MODES],
    }
}

/// One TLB mode fewer.
mod fewer_modes {
    use abi_stable::StableAbi;
    use std::sync::atomic::AtomicU32;
    use vm_plugin_api::TlbFast;

    #[repr(C, align(64))]
    #[derive(StableAbi)]
    pub struct CpuState {
        pub pc: u64,
        pub x: [u64; 32],
        pub f: [u64; 32],
        pub instret: u64,
        pub tb_flags: u32,
        pub privilege: u8,
        pub fetch_mmu: u8,
        pub _pad: [u8; 2],
        pub hart_id: u64,
        pub resv_addr: u64,
        pub resv_value: u64,
        pub fcsr: u64,
        pub attention: *const AtomicU32,
        pub tlb: [TlbFast; 3],
    }
}

#[test]
fn every_boundary_type_passes_the_check_against_itself() {
    let all = [
        ("CpuState", layout::<CpuState>()),
        ("TlbEntry", layout::<TlbEntry>()),
        ("TlbFast", layout::<TlbFast>()),
        ("HostCalls", layout::<HostCalls>()),
        ("HelperEntry", layout::<HelperEntry>()),
        ("HostResult", layout::<HostResult>()),
        ("Flow", layout::<Flow>()),
        ("MemAccess", layout::<MemAccess>()),
        ("AtomicReq", layout::<AtomicReq>()),
        ("IrOp", layout::<IrOp>()),
        ("IrBlock", layout::<IrBlock>()),
        ("Operand", layout::<Operand>()),
        ("Dest", layout::<Dest>()),
        ("At", layout::<At>()),
        ("Terminator", layout::<Terminator>()),
        ("Fetched", layout::<Fetched>()),
        ("EngineContext", layout::<EngineContext<'static>>()),
        ("IoRegion", layout::<IoRegion>()),
        ("DeviceContext", layout::<DeviceContext>()),
        ("GuestRam", layout::<GuestRam>()),
        ("VmError", layout::<VmError>()),
    ];
    for (name, l) in all {
        if let Err(e) = check_layout_compatibility(l, l) {
            panic!("{name} is refused against itself: {e}");
        }
    }
}

#[test]
fn a_field_for_field_copy_of_cpu_state_is_accepted() {
    if let Err(e) = check_layout_compatibility(layout::<CpuState>(), layout::<same::CpuState>()) {
        panic!("an identical CpuState is refused: {e}");
    }
}

#[test]
fn a_changed_cpu_state_is_refused() {
    let changed = [
        ("a wider tb_flags", layout::<wider::CpuState>()),
        ("swapped fields", layout::<swapped::CpuState>()),
        ("fewer TLB modes", layout::<fewer_modes::CpuState>()),
        ("no 64-byte alignment", layout::<less_aligned::CpuState>()),
    ];
    for (what, l) in changed {
        assert!(
            check_layout_compatibility(layout::<CpuState>(), l).is_err(),
            "a CpuState with {what} passes the layout check"
        );
    }
}
