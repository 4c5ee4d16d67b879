//! `vmhost`: the command-line front end.
//!
//! `vmhost run vm.toml` boots the machine the file describes and exits with the guest's exit code;
//! `vmhost plugins` lists every plugin it can find. Logs go to stderr (level from `RUST_LOG`), so
//! the guest console owns stdout.
//!
//! Exit codes of `run`: the guest's own (syscon power-off) when it powers off, 1 when vmhost stops
//! with an error, 128 + N when signal N (SIGHUP, SIGINT, SIGTERM) stopped it. SIGUSR1 swaps the
//! engine live for the one `[engine]` in the vm.toml names now.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use vm_host::activity::Activity;
use vm_host::listing;
use vm_host::loader::SearchPath;
use vm_host::{Outcome, PauseHandle, StopHandle, Vm, VmConfig};

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
        /// After SIGINT, SIGTERM or SIGHUP, how long the components get to stop before vmhost
        /// exits anyway, naming the one still busy. A second signal exits at once.
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_seconds)]
        stop_timeout: f64,
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
        Command::Run { config, stop_timeout } => run(&config, Duration::from_secs_f64(stop_timeout)),
        Command::Dumpdtb { config, output } => dump_dtb(&config, &output),
        Command::Plugins { config } => plugins(config.as_deref()),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds between 0 and 86400")),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("vmhost: error: {}", printable(&e.to_string()));
    ExitCode::from(1)
}

/// `s` with control characters escaped, so text from a vm.toml or a plugin (an id holding ESC or a
/// newline) can neither forge a line of vmhost's own nor drive the terminal.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// The VM a signal stops, once it exists.
type Running = Arc<Mutex<Option<(StopHandle, Arc<Activity>)>>>;

fn signal_name(n: i32) -> &'static str {
    match n {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        _ => "SIGTERM",
    }
}

/// Stops the VM on SIGINT, SIGTERM or SIGHUP and records which one came. If the components have
/// not stopped `grace` later, or on a second signal, exits with 128 + N naming what is still busy:
/// a plugin call that never returns must not make vmhost unkillable but by SIGKILL.
async fn watch_signals(running: Running, received: Arc<AtomicI32>, grace: Duration) {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        eprintln!("vmhost: warning: cannot handle signals; Ctrl-C ends vmhost without stopping the guest");
        return;
    };
    let first = tokio::select! {
        _ = int.recv() => libc::SIGINT,
        _ = term.recv() => libc::SIGTERM,
        _ = hup.recv() => libc::SIGHUP,
    };
    received.store(first, Ordering::SeqCst);
    let Some((stop, activity)) = running.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        // Still loading: nothing has started that needs stopping.
        std::process::exit(128 + first);
    };
    stop.stop();
    let second = tokio::select! {
        _ = int.recv() => Some(libc::SIGINT),
        _ = term.recv() => Some(libc::SIGTERM),
        _ = hup.recv() => Some(libc::SIGHUP),
        _ = tokio::time::sleep(grace) => None,
    };
    let why = match second {
        Some(n) => format!("a second signal ({}) came", signal_name(n)),
        None => format!("it has not stopped {:.1} s after {}", grace.as_secs_f64(), signal_name(first)),
    };
    let what = activity.describe().unwrap_or_else(|| "the VM".into());
    eprintln!("vmhost: {why}; exiting without waiting for {}", printable(&what));
    std::process::exit(128 + first);
}

/// On SIGUSR1, asks for an engine swap and pauses the VM so it can happen.
async fn watch_swaps(pause: PauseHandle, requested: Arc<AtomicBool>) {
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        eprintln!("vmhost: warning: cannot handle SIGUSR1; live engine swaps are off");
        return;
    };
    while usr1.recv().await.is_some() {
        requested.store(true, Ordering::SeqCst);
        pause.pause();
    }
}

/// Swaps every hart's engine for the one `[engine]` in `path` names now (a rebuilt library is
/// loaded anew), keeping the guest's state. A file or plugin that cannot be used leaves the
/// running engine in place, saying why.
fn swap_engine(vm: &mut Vm, path: &std::path::Path) {
    let swapped = VmConfig::load(path).map_err(vm_host::HostError::from).and_then(|config| {
        let search = SearchPath::new(&config.plugin_path);
        let plugin = vm_host::loader::resolve(&config.engine, vm_plugin_api::PluginKind::Engine, &search)
            .map_err(|e| config.error_at(config.engine_position, format!("key `engine.plugin`: {e}")))?;
        let what = format!("'{}' {} ({})", plugin.info.name, plugin.info.version, plugin.source);
        vm.swap_engine(plugin, &config.engine_config)?;
        Ok(what)
    });
    match swapped {
        Ok(what) => eprintln!("vmhost: engine swapped: every hart runs on {}", printable(&what)),
        Err(e) => {
            eprintln!("vmhost: engine not swapped, the running one goes on: {}", printable(&e.to_string()))
        }
    }
}

fn run(path: &std::path::Path, grace: Duration) -> ExitCode {
    let config = match VmConfig::load(path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let running: Running = Arc::default();
        let received = Arc::new(AtomicI32::new(libc::SIGINT));
        tokio::spawn(watch_signals(Arc::clone(&running), Arc::clone(&received), grace));
        let mut vm = match Vm::new(&config) {
            Ok(vm) => vm,
            Err(e) => return fail(e),
        };
        *running.lock().unwrap_or_else(|p| p.into_inner()) = Some((vm.stop_handle(), vm.activity()));
        let swaps = Arc::new(AtomicBool::new(false));
        tokio::spawn(watch_swaps(vm.pause_handle(), Arc::clone(&swaps)));
        let swap = |vm: &mut Vm| {
            let asked = swaps.swap(false, Ordering::SeqCst);
            if asked {
                swap_engine(vm, path);
            }
            asked
        };
        match vm.run_with(swap).await {
            Ok(Outcome::PowerOff(code)) => ExitCode::from(code.clamp(0, 255) as u8),
            Ok(Outcome::Reset) => {
                eprintln!("vmhost: the guest asked for a reset, which is not supported yet; stopping");
                ExitCode::SUCCESS
            }
            Ok(Outcome::Stopped) => ExitCode::from((128 + received.load(Ordering::SeqCst)) as u8),
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
