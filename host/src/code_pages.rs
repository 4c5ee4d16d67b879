//! Which RAM pages hold translated code, so that writes to them invalidate it.
//!
//! Translation marks the pages a block lies on. A write to a marked page from anywhere (a guest
//! store, an AMO, a device's DMA, a plugin through the memory manager) unmarks it, queues it and
//! raises `attn::CODE` on every hart; each hart's loop then tells its engine to drop the code on
//! the queued pages before running on (the protocol in `docs/abi.md`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vm_plugin_api::cpu::{PAGE_BITS, attn};

/// The code-page bitmap of one RAM region and the invalidation queue.
pub struct CodePages {
    base: u64,
    bits: Box<[AtomicU64]>,
    queue: Mutex<Vec<u64>>,
    attention: Vec<Arc<AtomicU32>>,
}

impl CodePages {
    /// Tracks `size` bytes of RAM at `base`; `attention` holds every hart's attention word.
    pub fn new(base: u64, size: u64, attention: Vec<Arc<AtomicU32>>) -> CodePages {
        let pages = size.div_ceil(1 << PAGE_BITS);
        let words = pages.div_ceil(64) as usize;
        CodePages {
            base,
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            queue: Mutex::default(),
            attention,
        }
    }

    /// Word index and bit of the page holding `paddr`, if it is in RAM.
    fn slot(&self, paddr: u64) -> Option<(usize, u64)> {
        let page = paddr.checked_sub(self.base)? >> PAGE_BITS;
        let word = usize::try_from(page / 64).ok().filter(|&w| w < self.bits.len())?;
        Some((word, 1 << (page % 64)))
    }

    /// Marks the page holding `paddr`; true if it was not marked before.
    pub fn mark(&self, paddr: u64) -> bool {
        self.slot(paddr).is_some_and(|(w, bit)| self.bits[w].fetch_or(bit, Ordering::AcqRel) & bit == 0)
    }

    /// Whether the page holding `paddr` holds translated code.
    pub fn is_code(&self, paddr: u64) -> bool {
        self.slot(paddr).is_some_and(|(w, bit)| self.bits[w].load(Ordering::Acquire) & bit != 0)
    }

    /// `len` bytes at `paddr` were written: invalidates the code on every marked page in range.
    /// Returns whether there was any.
    pub fn written(&self, paddr: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        let first = paddr >> PAGE_BITS;
        let last = paddr.saturating_add(len - 1) >> PAGE_BITS;
        let mut found = false;
        for page in first..=last {
            let Some((w, bit)) = self.slot(page << PAGE_BITS) else { continue };
            if self.bits[w].fetch_and(!bit, Ordering::AcqRel) & bit != 0 {
                self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(page << PAGE_BITS);
                found = true;
            }
        }
        if found {
            for a in &self.attention {
                a.fetch_or(attn::CODE, Ordering::SeqCst);
            }
        }
        found
    }

    /// The pages invalidated since the last call (guest physical page addresses).
    pub fn take_invalidated(&self) -> Vec<u64> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_to_a_marked_page_queues_it_once_and_raises_attention() {
        let attention = Arc::new(AtomicU32::new(0));
        let code = CodePages::new(0x8000_0000, 1 << 20, vec![Arc::clone(&attention)]);
        assert!(code.mark(0x8000_1234));
        assert!(!code.mark(0x8000_1000), "already marked");
        assert!(!code.mark(0x7fff_f000) && !code.mark(0x8010_0000), "outside RAM");
        assert!(!code.written(0x8000_2000, 0x1000), "the next page holds no code");
        assert_eq!(attention.load(Ordering::SeqCst), 0);
        assert!(code.written(0x8000_0ffe, 4), "a write straddling into the page");
        assert_eq!(attention.load(Ordering::SeqCst), attn::CODE);
        assert!(!code.is_code(0x8000_1000));
        assert!(!code.written(0x8000_1000, 8), "queued once");
        assert_eq!(code.take_invalidated(), [0x8000_1000]);
        assert!(code.take_invalidated().is_empty());
        assert!(!code.written(u64::MAX - 3, 8), "a range to the top of the address space");
    }
}
