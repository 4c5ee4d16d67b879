//! `interp`: the reference IR interpreter engine of vmhost.
//!
//! It runs the host's IR blocks on the host's `CpuState` and defines what the IR means: every other
//! engine is checked against it. Blocks are pre-decoded once into a compact op form (`code`),
//! cached by guest pc and translation flags with successor links (`cache`), and executed by a tight
//! loop over a flat register frame (`exec`). This file is the plugin glue and the run loop.
#![warn(missing_docs)]

mod cache;
mod code;
mod exec;
#[cfg(test)]
mod tests;

use cache::Cache;
use code::Frame;
use exec::{Counts, Stop};
use serde::Deserialize;
use vm_plugin_api::{
    Component, CpuState, Engine, EngineContext, EnginePlugin, Events, ExecutionStats, ExitReason, Fetched,
    Flow, HostCalls, Invalidate, IrBlock, PluginDescription, PluginModRef, VmError,
};

/// The interpreter's configuration table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Ask the host to drive the engine through `run_async` (a run on its own thread).
    #[serde(rename = "async")]
    run_async: bool,
}

/// The IR interpreter engine.
pub struct Interp {
    config: Config,
    cache: Cache,
    /// Holds the one-off block of [`Engine::execute_block`], reused to avoid allocating.
    scratch: Cache,
    frame: Box<Frame>,
    stats: ExecutionStats,
}

impl Default for Interp {
    fn default() -> Self {
        Interp {
            config: Config::default(),
            cache: Cache::default(),
            scratch: Cache::default(),
            frame: Frame::new(),
            stats: ExecutionStats::default(),
        }
    }
}

impl Interp {
    /// An interpreter with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// An interpreter configured by a TOML table (`async = true|false`, default false).
    pub fn from_config(toml: &str) -> Result<Self, VmError> {
        Ok(Interp { config: parse_config(toml)?, ..Self::default() })
    }

    /// Drops every translation; counts a flush if there was anything to drop.
    fn drop_translations(&mut self) {
        if !self.cache.is_empty() {
            self.cache.clear();
            self.stats.cache_flushes += 1;
        }
    }
}

/// Errors start with the key they are about (the host names the engine and points at the key).
fn parse_config(toml: &str) -> Result<Config, VmError> {
    vm_plugin_api::config::parse(toml)
}

impl Engine for Interp {
    fn run(&mut self, cpu: &mut CpuState, host: &HostCalls, budget: u64) -> Result<ExitReason, VmError> {
        let mut counts = Counts::default();
        self.frame.load_regs(cpu.regs());
        let r = run_loop(self, cpu, host, budget, &mut counts);
        self.frame.store_regs(cpu.regs_mut());
        self.stats.instructions += counts.retired;
        self.stats.blocks_executed += counts.executed;
        r
    }

    fn execute_block(&mut self, cpu: &mut CpuState, host: &HostCalls, ir: &IrBlock) -> Result<Flow, VmError> {
        self.scratch.clear();
        let (index, _) = self.scratch.insert(ir)?;
        let mut counts = Counts::default();
        self.frame.load_regs(cpu.regs());
        let stop =
            exec::run_blocks::<false>(&self.scratch, index, &mut self.frame, cpu, host, 0, &mut counts);
        self.frame.store_regs(cpu.regs_mut());
        self.stats.instructions += counts.retired;
        self.stats.blocks_executed += counts.executed;
        Ok(match stop {
            Stop::Done => Flow::Continue,
            Stop::Redirect => Flow::Redirect,
            Stop::Exit(reason) => Flow::Exit(reason),
            Stop::UnknownHelper { id, table } => return Err(unknown_helper(cpu, id, table)),
            Stop::Unlinked { .. } | Stop::Gone => {
                unreachable!("a block run without chaining never follows a link")
            }
        })
    }

    fn stats(&self) -> ExecutionStats {
        self.stats
    }

    fn invalidate(&mut self, scope: Invalidate<'_>) {
        match scope {
            Invalidate::Pages(pages) => {
                if self.cache.drop_pages(&pages) > 0 {
                    self.stats.cache_flushes += 1;
                }
            }
            // The cache is keyed by virtual pc, so every block depends on the mappings. (Keying
            // code by physical pc, found through the TLB's exec tag, would let blocks survive this;
            // that is the later optimisation.)
            Invalidate::VirtualMappings | Invalidate::All => self.drop_translations(),
        }
    }

    fn reset(&mut self) -> Result<(), VmError> {
        self.cache.clear();
        self.stats = ExecutionStats::default();
        Ok(())
    }

    fn prefers_async(&self) -> bool {
        self.config.run_async
    }
}

impl Component for Interp {
    fn update_config(&mut self, toml: &str) -> Result<(), VmError> {
        self.config = parse_config(toml)?;
        Ok(())
    }

    fn get_config(&self) -> String {
        format!("async = {}\n", self.config.run_async)
    }

    fn validate_config(&self, toml: &str) -> Result<(), VmError> {
        parse_config(toml).map(|_| ())
    }
}

fn unknown_helper(cpu: &CpuState, id: u32, table: usize) -> VmError {
    VmError::engine(format!(
        "the IR at pc {:#x} calls helper {id}, but the host's helper table has {table} entries",
        cpu.pc
    ))
}

/// The run loop: finds or translates the block for `(cpu.pc, cpu.tb_flags)` and hands it to the
/// executor, which goes on through linked blocks by itself. Guest registers live in
/// `interp.frame` throughout.
fn run_loop(
    interp: &mut Interp,
    cpu: &mut CpuState,
    host: &HostCalls,
    budget: u64,
    counts: &mut Counts,
) -> Result<ExitReason, VmError> {
    let Interp { cache, frame, stats, .. } = interp;
    // The successor link to fill in once the block for `cpu.pc` is known.
    let mut link_from: Option<(u32, usize)> = None;
    loop {
        if cpu.attention() {
            return Ok(ExitReason::ExitRequested);
        }
        if counts.retired >= budget {
            return Ok(ExitReason::BudgetExhausted);
        }
        let (pc, flags) = (cpu.pc, cpu.tb_flags);
        let index = match cache.lookup(pc, flags) {
            Some(i) => i,
            None => {
                // Translation is a host call like any other: it may read or change state.
                frame.store_regs(cpu.regs_mut());
                let fetched = host.translate(cpu, pc);
                frame.load_regs(cpu.regs());
                let ir = match fetched {
                    Fetched::Block(ir) => ir,
                    Fetched::Flow(Flow::Redirect) => {
                        link_from = None;
                        continue;
                    }
                    Fetched::Flow(Flow::Exit(reason)) => return Ok(reason),
                    Fetched::Flow(Flow::Continue) => {
                        return Err(VmError::engine(format!(
                            "the host answered the translation of pc {pc:#x} with Flow::Continue \
                             (it must give a block, a redirect or an exit)"
                        )));
                    }
                };
                if ir.pc != pc {
                    return Err(VmError::engine(format!(
                        "asked the host for the block at pc {pc:#x} and got one at {:#x}",
                        ir.pc
                    )));
                }
                if ir.flags != cpu.tb_flags {
                    return Err(VmError::engine(format!(
                        "asked the host for the block at pc {pc:#x} under tb_flags {:#x} and got one \
                         lowered under {:#x}",
                        cpu.tb_flags, ir.flags
                    )));
                }
                stats.blocks_translated += 1;
                let (i, flushed) = cache.insert(&ir)?;
                if flushed {
                    stats.cache_flushes += 1;
                    link_from = None;
                }
                i
            }
        };
        if let Some((from, succ)) = link_from.take() {
            cache.link(from, succ, index);
        }
        match exec::run_blocks::<true>(cache, index, frame, cpu, host, budget, counts) {
            Stop::Unlinked { from, succ } => link_from = Some((from, succ)),
            Stop::Redirect | Stop::Gone => {}
            Stop::Exit(reason) => return Ok(reason),
            Stop::UnknownHelper { id, table } => return Err(unknown_helper(cpu, id, table)),
            Stop::Done => unreachable!("a chained run never stops after one block by itself"),
        }
    }
}

impl PluginDescription for Interp {
    const NAME: &'static str = "interp";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Reference IR interpreter: pre-decoded ops, block cache with chaining";
}

impl EnginePlugin for Interp {
    fn create(ctx: &EngineContext<'_>, _events: Events) -> Result<Self, VmError> {
        Interp::from_config(ctx.config.as_str())
    }
}

/// The plugin's root module (exported by the `vmhost_interp` shared library, linked into the host
/// as a built-in).
pub fn module() -> PluginModRef {
    vm_plugin_api::engine_module::<Interp>()
}

#[cfg(test)]
mod config_tests {
    use super::parse_config;

    #[test]
    fn config_errors_name_the_key() {
        assert!(parse_config("async = true").unwrap().run_async);
        assert_eq!(
            parse_config("asnyc = true").unwrap_err().message(),
            "unknown key `asnyc`, expected `async`"
        );
        assert_eq!(
            parse_config("async = 1").unwrap_err().message(),
            "key `async`: invalid type: integer `1`, expected a boolean"
        );
    }
}
