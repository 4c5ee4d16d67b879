//! The RISC-V guest: everything that knows the guest ISA.
//!
//! `decode` reads instructions, `lower` turns a basic block into IR, `helper` defines the helper
//! calls the IR makes back into the host, `csr` and `hart` implement them (CSRs, traps, privilege),
//! `fpu` does the F and D arithmetic, `mmu` translates Sv39/Sv48 virtual addresses, `code_mappings`
//! remembers which of them translated code came through, and `vcpu` is the host-call table an
//! engine runs against.

pub mod code_mappings;
pub mod csr;
pub mod decode;
pub mod fpu;
pub mod hart;
pub mod helper;
pub mod lower;
pub mod mmu;
pub mod pmp;
pub mod tlb;
pub mod vcpu;
