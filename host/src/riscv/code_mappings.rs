//! Which virtual mappings a hart's translated code was fetched through, so that an `sfence.vma`
//! of an address no translated code came from leaves the engine's translations alone. Linux
//! fences each page it maps after a fault, and almost none of those hold code already translated:
//! dropping every translation for each of them made booting a shell twice as slow.
//!
//! A fence by address drops the whole leaf mapping it falls in (a superpage too), so each fetch
//! is recorded under its leaf, and a fence checks the leaves of every size its address lies in.

use crate::riscv::mmu::PageSize;
use std::collections::HashSet;

/// The leaf sizes of Sv39 and Sv48.
const SIZES: [PageSize; 4] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G, PageSize::Size512G];

/// The leaf mappings code was fetched through since the engine last dropped its translations
/// that depend on virtual mappings.
#[derive(Debug, Default)]
pub struct CodeMappings {
    /// Each leaf's base address with its size's log2 in the (always clear) low bits.
    leaves: HashSet<u64>,
}

fn key(vaddr: u64, size: PageSize) -> u64 {
    let bytes = size.bytes();
    (vaddr & !(bytes - 1)) | u64::from(bytes.trailing_zeros())
}

impl CodeMappings {
    /// Code at `vaddr` was fetched through a leaf mapping of `size`.
    pub fn record(&mut self, vaddr: u64, size: PageSize) {
        self.leaves.insert(key(vaddr, size));
    }

    /// Whether a fence of `vaddr` may change the mapping of recorded code.
    pub fn covers(&self, vaddr: u64) -> bool {
        !self.leaves.is_empty() && SIZES.iter().any(|&s| self.leaves.contains(&key(vaddr, s)))
    }

    /// The engine drops every translation that depends on virtual mappings.
    pub fn clear(&mut self) {
        self.leaves.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_covers_exactly_the_leaves_code_came_from() {
        let mut m = CodeMappings::default();
        assert!(!m.covers(0x1000));
        m.record(0x4000_1234, PageSize::Size4K);
        assert!(m.covers(0x4000_1000) && m.covers(0x4000_1fff));
        assert!(!m.covers(0x4000_2000) && !m.covers(0x4000_0fff), "the next and previous pages");
        // A superpage: a fence anywhere in it may remap the code.
        m.record(0xffff_ffff_8020_0000, PageSize::Size2M);
        assert!(m.covers(0xffff_ffff_803f_f000) && m.covers(0xffff_ffff_8020_0000));
        assert!(!m.covers(0xffff_ffff_8040_0000));
        m.record(0x80_0000_0000, PageSize::Size512G);
        assert!(m.covers(0xff_ffff_f000));
        m.clear();
        assert!(!m.covers(0x4000_1000) && !m.covers(0xffff_ffff_8020_0000));
    }
}
