//! Which RAM pages hold translated code, so that writes to them invalidate it.
//!
//! Translation marks the bytes a block lies on (by halfword, per page). A write that overlaps
//! marked bytes, from anywhere (a guest store, an AMO, a device's DMA, a plugin through the memory
//! manager), unmarks the page, queues it and raises `attn::CODE` on every hart; each hart's loop
//! then tells its engine to drop the code on the queued pages before running on (the protocol in
//! `docs/abi.md`). A write to data that shares a page with code leaves the code alone, as QEMU's
//! per-block invalidation does: firmware and small guests keep variables next to their code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vm_plugin_api::cpu::{PAGE_BITS, PAGE_SIZE, attn};

/// Which halfwords of a page hold translated code.
type Halfwords = [u64; (PAGE_SIZE / 2 / 64) as usize];

/// The code-page bitmap of one RAM region and the invalidation queue.
pub struct CodePages {
    base: u64,
    bits: Box<[AtomicU64]>,
    /// For each marked page, its code halfwords.
    code: Mutex<HashMap<u64, Halfwords>>,
    /// Per hart: the pages its engine has still to drop.
    queues: Vec<Mutex<Vec<u64>>>,
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
            code: Mutex::default(),
            queues: attention.iter().map(|_| Mutex::default()).collect(),
            attention,
        }
    }

    /// Word index and bit of the page holding `paddr`, if it is in RAM.
    fn slot(&self, paddr: u64) -> Option<(usize, u64)> {
        let page = paddr.checked_sub(self.base)? >> PAGE_BITS;
        let word = usize::try_from(page / 64).ok().filter(|&w| w < self.bits.len())?;
        Some((word, 1 << (page % 64)))
    }

    /// Marks `len` bytes of code at `paddr`, all on one page; true if the page held none before.
    pub fn mark(&self, paddr: u64, len: u64) -> bool {
        let Some((w, bit)) = self.slot(paddr) else { return false };
        let page = paddr & !(PAGE_SIZE - 1);
        let mut code = self.code.lock().unwrap_or_else(|p| p.into_inner());
        let halves = code.entry(page).or_insert([0; 32]);
        for_halfwords(paddr, len, |i| halves[i / 64] |= 1 << (i % 64));
        self.bits[w].fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    /// Asks every hart but `hart` to flush its TLB, so that pages just marked lose their cached
    /// write entries there (`attn::TLB`).
    pub fn protect_elsewhere(&self, hart: usize) {
        for (h, a) in self.attention.iter().enumerate() {
            if h != hart {
                a.fetch_or(attn::TLB, Ordering::SeqCst);
            }
        }
    }

    /// Whether the page holding `paddr` holds translated code.
    pub fn is_code(&self, paddr: u64) -> bool {
        self.slot(paddr).is_some_and(|(w, bit)| self.bits[w].load(Ordering::Acquire) & bit != 0)
    }

    /// `len` bytes at `paddr` were written: invalidates every marked page whose code they touch.
    /// Returns whether there was any.
    pub fn written(&self, paddr: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        let first = paddr >> PAGE_BITS;
        let last = paddr.saturating_add(len - 1) >> PAGE_BITS;
        let end = paddr.saturating_add(len - 1);
        let mut found = false;
        for page in first..=last {
            let Some((w, bit)) = self.slot(page << PAGE_BITS) else { continue };
            if self.bits[w].load(Ordering::Acquire) & bit == 0 {
                continue;
            }
            let base = page << PAGE_BITS;
            let (from, to) = (paddr.max(base), end.min(base + PAGE_SIZE - 1));
            let mut code = self.code.lock().unwrap_or_else(|p| p.into_inner());
            let hit = code.get(&base).is_some_and(|h| {
                let mut hit = false;
                for_halfwords(from, to - from + 1, |i| hit |= h[i / 64] & 1 << (i % 64) != 0);
                hit
            });
            if hit && self.bits[w].fetch_and(!bit, Ordering::AcqRel) & bit != 0 {
                code.remove(&base);
                for q in &self.queues {
                    q.lock().unwrap_or_else(|p| p.into_inner()).push(base);
                }
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

    /// The pages invalidated since hart `hart`'s last call (guest physical page addresses).
    pub fn take_invalidated(&self, hart: usize) -> Vec<u64> {
        self.queues
            .get(hart)
            .map_or_else(Vec::new, |q| std::mem::take(&mut *q.lock().unwrap_or_else(|p| p.into_inner())))
    }
}

/// Calls `f` with the index in its page of every halfword that `len` bytes at `paddr` touch
/// (all on one page).
fn for_halfwords(paddr: u64, len: u64, mut f: impl FnMut(usize)) {
    let first = (paddr & (PAGE_SIZE - 1)) / 2;
    let last = ((paddr & (PAGE_SIZE - 1)) + len.max(1) - 1).min(PAGE_SIZE - 1) / 2;
    for i in first..=last {
        f(i as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_to_marked_code_queues_its_page_once_and_raises_attention() {
        let attention = Arc::new(AtomicU32::new(0));
        let code = CodePages::new(0x8000_0000, 1 << 20, vec![Arc::clone(&attention)]);
        assert!(code.mark(0x8000_1000, 0x10));
        assert!(!code.mark(0x8000_1400, 4), "already marked");
        assert!(!code.mark(0x7fff_f000, 4) && !code.mark(0x8010_0000, 4), "outside RAM");
        assert!(!code.written(0x8000_2000, 0x1000), "the next page holds no code");
        assert!(!code.written(0x8000_1010, 0x3f0), "data between the code on the page");
        assert!(!code.written(0x8000_1404, 8), "just after code");
        assert_eq!(attention.load(Ordering::SeqCst), 0);
        assert!(code.is_code(0x8000_1000), "data writes leave the code marked");
        assert!(code.written(0x8000_0ffe, 4), "a write straddling into the code");
        assert_eq!(attention.load(Ordering::SeqCst), attn::CODE);
        assert!(!code.is_code(0x8000_1000));
        assert!(!code.written(0x8000_1000, 8), "queued once");
        assert_eq!(code.take_invalidated(0), [0x8000_1000]);
        assert!(code.take_invalidated(0).is_empty());
        assert!(!code.written(u64::MAX - 3, 8), "a range to the top of the address space");
    }
}
