//! The fuzz target's inputs in the normal test run: every file of the minimised corpus
//! (`fuzz/corpus/parse_request`), the crash reproducers (`fuzz/regressions`) and the seeds
//! (`fuzz/seeds`) go through the harness, which panics on a broken promise. The seeds are also
//! checked to reach the served requests they describe, so the harness is known to go deep.

use std::path::{Path, PathBuf};
use virtio_bindings::virtio_blk::{VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK};
use vm_virtio_blk::fuzzing::{parse_from_bytes, seeds};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(name)
}

/// The files in `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn run_all(paths: &[PathBuf]) {
    for p in paths {
        let data = std::fs::read(p).unwrap();
        // A panic names the file to reproduce it with `cargo fuzz run parse_request FILE`.
        let r = std::panic::catch_unwind(|| parse_from_bytes(&data));
        assert!(r.is_ok(), "{} fails the harness", p.display());
    }
}

#[test]
fn the_corpus_passes_the_harness() {
    let corpus = files(&dir("corpus/parse_request"));
    assert!(corpus.len() >= 10, "the corpus is missing or nearly empty: {} files", corpus.len());
    run_all(&corpus);
}

#[test]
fn the_crash_reproducers_pass_the_harness() {
    run_all(&files(&dir("regressions")));
}

#[test]
fn the_seeds_are_served_as_they_say() {
    let ok = Some(VIRTIO_BLK_S_OK as u8);
    let ioerr = Some(VIRTIO_BLK_S_IOERR as u8);
    for (name, input) in seeds::all() {
        let s = parse_from_bytes(&input.to_bytes());
        let want = match name {
            "three-requests" => vec![ok; 3],
            "past-the-end" | "partial-sector" | "read-only-write" => vec![ioerr],
            _ => vec![ok],
        };
        assert!(s.started, "{name}: the queue did not start");
        assert_eq!(s.statuses, want, "{name}");
        assert!(!s.needs_reset, "{name}");
    }
}

/// `fuzz/seeds` holds the seeds as built here; `VMHOST_UPDATE_SEEDS=1` rewrites it.
#[test]
fn the_seed_files_are_up_to_date() {
    let d = dir("seeds");
    let update = std::env::var_os("VMHOST_UPDATE_SEEDS").is_some();
    for (name, input) in seeds::all() {
        let p = d.join(name);
        if update {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(&p, input.to_bytes()).unwrap();
        }
        let on_disk = std::fs::read(&p).unwrap_or_default();
        assert!(on_disk == input.to_bytes(), "{} is stale: run with VMHOST_UPDATE_SEEDS=1", p.display());
    }
    assert_eq!(files(&d).len(), seeds::all().len(), "{} holds files no seed builds", d.display());
}

#[test]
fn malformed_guests_do_not_start_or_cannot_be_answered() {
    // Empty input: a queue of one at offset 0 with an empty ring: nothing to serve.
    assert_eq!(parse_from_bytes(&[]).statuses, []);
    // The rings past RAM's end: the transport would refuse DRIVER_OK.
    let mut g = seeds::guest(8, 16);
    g.used = 0xfffc;
    assert!(!parse_from_bytes(&g.to_bytes()).started);
    // A chain whose only descriptor names itself: no status byte, DEVICE_NEEDS_RESET.
    let mut g = seeds::guest(4, 16);
    g.desc(0, 0, g.buffers(), 16, 1, 0);
    g.offer(&[0]);
    let s = parse_from_bytes(&g.to_bytes());
    assert_eq!((s.statuses, s.needs_reset), (vec![None], true));
}
