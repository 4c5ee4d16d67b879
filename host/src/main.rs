//! `vmhost`: the command-line front end.
//!
//! `vmhost run vm.toml` boots the machine the file describes and exits with the guest's exit code;
//! `vmhost plugins` lists every plugin it can find. Logs go to stderr (level from `RUST_LOG`), so
//! the guest console owns stdout.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vm_host::listing;
use vm_host::loader::SearchPath;
use vm_host::{Outcome, Vm, VmConfig};

#[derive(Parser)]
#[command(name = "vmhost", version, about = "A plugin-based RISC-V virtual machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the machine described by a vm.toml and run it until the guest powers off.
    Run {
        /// The machine description.
        config: PathBuf,
    },
    /// Build the machine a vm.toml describes and write its device tree blob, without running it.
    Dumpdtb {
        /// The machine description.
        config: PathBuf,
        /// Where to write the blob.
        output: PathBuf,
    },
    /// List the plugins found on the search path and the built-in ones.
    Plugins {
        /// Also search the `[plugins] path` of this vm.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Dumpdtb { config, output } => dump_dtb(&config, &output),
        Command::Plugins { config } => plugins(config.as_deref()),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("vmhost: error: {e}");
    ExitCode::from(1)
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match VmConfig::load(path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let mut vm = match Vm::new(&config) {
            Ok(vm) => vm,
            Err(e) => return fail(e),
        };
        let stop = vm.stop_handle();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.stop();
            }
        });
        match vm.run().await {
            Ok(Outcome::PowerOff(code)) => ExitCode::from(code.clamp(0, 255) as u8),
            Ok(Outcome::Reset) => {
                eprintln!("vmhost: the guest asked for a reset, which is not supported yet; stopping");
                ExitCode::SUCCESS
            }
            Ok(Outcome::Stopped) => ExitCode::from(130),
            Ok(Outcome::Paused) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

fn dump_dtb(path: &std::path::Path, output: &std::path::Path) -> ExitCode {
    let vm = match VmConfig::load(path).map_err(vm_host::HostError::from).and_then(|c| Vm::new(&c)) {
        Ok(vm) => vm,
        Err(e) => return fail(e),
    };
    match std::fs::write(output, &vm.machine().dtb) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("cannot write {}: {e}", output.display())),
    }
}

fn plugins(config: Option<&std::path::Path>) -> ExitCode {
    let dirs = match config.map(VmConfig::load) {
        Some(Ok(c)) => c.plugin_path,
        Some(Err(e)) => return fail(e),
        None => Vec::new(),
    };
    print!("{}", listing::table(&SearchPath::new(&dirs)));
    ExitCode::SUCCESS
}
