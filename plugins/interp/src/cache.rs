//! The translation cache: compiled blocks by (guest virtual pc, `tb_flags`), with a direct-mapped
//! table in front of the hash map, successor links between blocks stored in the blocks
//! themselves, and a map from guest physical code pages to the blocks on them.
//!
//! Block indices are never reused before a full clear, so a link always names the block it was
//! made to, and is below `blocks.len()`: a clear drops every block that holds a link but the
//! sentinel at `NO_BLOCK`, whose links are never set. Dropping one block (its page changed) removes it from the maps and makes it
//! unreachable through links: its pc becomes one no block leads to, and its body becomes
//! [`Op::Gone`](crate::code::Op::Gone), which sends the executor back to a fresh lookup. Its
//! storage is reclaimed at the next full clear (as QEMU reclaims its code buffer when it fills).

use crate::code::{Block, Code, GONE, Link, NO_BLOCK};
use std::collections::HashMap;
use vm_plugin_api::{IrBlock, VmError, ir::NO_PAGE};

/// Entries in the direct-mapped table (a power of two).
const FAST_ENTRIES: usize = 4096;
/// Past this many blocks the cache starts over, as QEMU does when its code buffer fills: it bounds
/// memory on guests that keep generating code, and a full flush is cheap to recover from.
const MAX_BLOCKS: usize = 1 << 18;
/// The pc of a dropped block: odd, so no frontend's aligned pc is ever equal to it.
const DEAD_PC: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct FastEntry {
    pc: u64,
    flags: u32,
    block: u32,
}

const EMPTY: FastEntry = FastEntry { pc: 0, flags: 0, block: NO_BLOCK };

pub(crate) struct Cache {
    pub code: Code,
    pub blocks: Vec<Block>,
    map: HashMap<(u64, u32), u32>,
    /// Guest physical page address → the blocks with code on it (dropped ones included until the
    /// page is invalidated or the cache cleared).
    pages: HashMap<u64, Vec<u32>>,
    fast: Box<[FastEntry]>,
}

/// Block `NO_BLOCK`: dropped from the start, so it is never run (see `exec::run_blocks`).
fn sentinel() -> Block {
    Block {
        pc: DEAD_PC,
        flags: 0,
        insn_count: 0,
        start: GONE,
        targets: [0; 2],
        succ: [const { Link::none() }; 3],
    }
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            code: Code::default(),
            blocks: vec![sentinel()],
            map: HashMap::new(),
            pages: HashMap::new(),
            fast: vec![EMPTY; FAST_ENTRIES].into_boxed_slice(),
        }
    }
}

#[inline(always)]
fn slot(pc: u64, flags: u32) -> usize {
    // Guest code is at least 2-byte aligned; the low bit carries no information.
    ((pc >> 1) as usize ^ flags as usize) & (FAST_ENTRIES - 1)
}

/// Below this many blocks, clearing resets only their own table entries: guests that flush often
/// should not pay for the whole table each time.
const SMALL_CLEAR: usize = 64;

impl Cache {
    /// Drops every translation.
    pub(crate) fn clear(&mut self) {
        if self.blocks.len() <= SMALL_CLEAR {
            for b in &self.blocks {
                if b.pc != DEAD_PC {
                    self.fast[slot(b.pc, b.flags)] = EMPTY;
                }
            }
        } else {
            self.fast.fill(EMPTY);
        }
        self.code.clear();
        self.blocks.truncate(NO_BLOCK as usize + 1);
        self.map.clear();
        self.pages.clear();
    }

    /// Whether there is anything to drop.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.len() == NO_BLOCK as usize + 1
    }

    /// The compiled block for `(pc, flags)` if the direct-mapped table has it: cheap enough for
    /// the executor to try on every unlinked block transition.
    #[inline(always)]
    pub(crate) fn find_fast(&self, pc: u64, flags: u32) -> Option<u32> {
        let e = self.fast[slot(pc, flags)];
        (e.pc == pc && e.flags == flags && e.block != NO_BLOCK).then_some(e.block)
    }

    /// The compiled block for `(pc, flags)`, if any.
    pub(crate) fn lookup(&mut self, pc: u64, flags: u32) -> Option<u32> {
        if let Some(b) = self.find_fast(pc, flags) {
            return Some(b);
        }
        let block = *self.map.get(&(pc, flags))?;
        self.fast[slot(pc, flags)] = FastEntry { pc, flags, block };
        Some(block)
    }

    /// Compiles and caches `ir` under `(ir.pc, ir.flags)`. Returns its index, and whether the
    /// cache was flushed first to make room (which invalidates every index handed out before).
    pub(crate) fn insert(&mut self, ir: &IrBlock) -> Result<(u32, bool), VmError> {
        let flushed = self.blocks.len() >= MAX_BLOCKS;
        if flushed {
            self.clear();
        }
        if ir.pc == DEAD_PC {
            return Err(VmError::engine(format!("malformed IR block: pc {DEAD_PC:#x} is not a block start")));
        }
        let block = self.code.compile(ir)?;
        let index = self.blocks.len() as u32;
        self.blocks.push(block);
        self.map.insert((ir.pc, ir.flags), index);
        self.fast[slot(ir.pc, ir.flags)] = FastEntry { pc: ir.pc, flags: ir.flags, block: index };
        for page in ir.pages {
            if page != NO_PAGE {
                let on_page = self.pages.entry(page).or_default();
                // A block lying twice on one page is listed once.
                if on_page.last() != Some(&index) {
                    on_page.push(index);
                }
            }
        }
        Ok((index, flushed))
    }

    /// Points successor link `succ` of block `from` at block `to`.
    pub(crate) fn link(&self, from: u32, succ: usize, to: u32) {
        self.blocks[from as usize].succ[succ].set(to, self.blocks[to as usize].start);
    }

    /// Drops the blocks with code on any of `pages` (guest physical page addresses); gives how
    /// many were live.
    pub(crate) fn drop_pages(&mut self, pages: &[u64]) -> usize {
        let mut dropped = 0;
        for page in pages {
            for index in self.pages.remove(page).unwrap_or_default() {
                dropped += self.drop_block(index) as usize;
            }
        }
        dropped
    }

    /// Makes block `index` unreachable (see the module docs); false if it already was.
    fn drop_block(&mut self, index: u32) -> bool {
        let b = &mut self.blocks[index as usize];
        if b.pc == DEAD_PC {
            return false;
        }
        let key = (b.pc, b.flags);
        if self.map.get(&key) == Some(&index) {
            self.map.remove(&key);
        }
        let fast = &mut self.fast[slot(key.0, key.1)];
        if fast.block == index {
            *fast = EMPTY;
        }
        b.pc = DEAD_PC;
        b.start = GONE;
        // Its own links would keep nothing alive, but dropping them keeps the picture simple.
        for link in &b.succ {
            link.set(NO_BLOCK, GONE);
        }
        true
    }
}
