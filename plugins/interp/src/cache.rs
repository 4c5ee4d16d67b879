//! The translation cache: compiled blocks by guest pc, with a direct-mapped table in front of the
//! hash map, and successor links between blocks stored in the blocks themselves.
//!
//! Dropping translations drops everything at once (blocks, links, tables): links are plain block
//! indices, and clearing them all together is what keeps a link from ever naming a dead block.

use crate::code::{Block, Code, NO_BLOCK};
use std::collections::HashMap;
use vm_plugin_api::{IrBlock, VmError};

/// Entries in the direct-mapped table (a power of two).
const FAST_ENTRIES: usize = 4096;
/// Past this many blocks the cache starts over, as QEMU does when its code buffer fills: it bounds
/// memory on guests that keep generating code, and a full flush is cheap to recover from.
const MAX_BLOCKS: usize = 1 << 18;

#[derive(Clone, Copy)]
struct FastEntry {
    pc: u64,
    block: u32,
}

const EMPTY: FastEntry = FastEntry { pc: 0, block: NO_BLOCK };

pub(crate) struct Cache {
    pub code: Code,
    pub blocks: Vec<Block>,
    map: HashMap<u64, u32>,
    fast: Box<[FastEntry]>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            code: Code::default(),
            blocks: Vec::new(),
            map: HashMap::new(),
            fast: vec![EMPTY; FAST_ENTRIES].into_boxed_slice(),
        }
    }
}

#[inline(always)]
fn slot(pc: u64) -> usize {
    // Guest code is at least 2-byte aligned; the low bit carries no information.
    (pc >> 1) as usize & (FAST_ENTRIES - 1)
}

/// Below this many blocks, clearing resets only their own table entries: guests that flush often
/// (`fence.i` in a loader or a JIT) should not pay for the whole table each time.
const SMALL_CLEAR: usize = 64;

impl Cache {
    /// Drops every translation.
    pub(crate) fn clear(&mut self) {
        if self.blocks.len() <= SMALL_CLEAR {
            for b in &self.blocks {
                self.fast[slot(b.pc)] = EMPTY;
            }
        } else {
            self.fast.fill(EMPTY);
        }
        self.code.clear();
        self.blocks.clear();
        self.map.clear();
    }

    /// The compiled block for `pc` if the direct-mapped table has it: cheap enough for the
    /// executor to try on every unlinked block transition.
    #[inline(always)]
    pub(crate) fn find_fast(&self, pc: u64) -> Option<u32> {
        let e = self.fast[slot(pc)];
        (e.pc == pc && e.block != NO_BLOCK).then_some(e.block)
    }

    /// The compiled block for `pc`, if any.
    pub(crate) fn lookup(&mut self, pc: u64) -> Option<u32> {
        if let Some(b) = self.find_fast(pc) {
            return Some(b);
        }
        let block = *self.map.get(&pc)?;
        self.fast[slot(pc)] = FastEntry { pc, block };
        Some(block)
    }

    /// Compiles and caches `ir`. Returns its index, and whether the cache was flushed first to
    /// make room (which invalidates every index handed out before).
    pub(crate) fn insert(&mut self, ir: &IrBlock) -> Result<(u32, bool), VmError> {
        let flushed = self.blocks.len() >= MAX_BLOCKS;
        if flushed {
            self.clear();
        }
        let block = self.code.compile(ir)?;
        let index = self.blocks.len() as u32;
        self.blocks.push(block);
        self.map.insert(ir.pc, index);
        self.fast[slot(ir.pc)] = FastEntry { pc: ir.pc, block: index };
        Ok((index, flushed))
    }
}
