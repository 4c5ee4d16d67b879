//! virtio-blk request parsing and serving from guest memory: see `vm_virtio_blk::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vm_virtio_blk::fuzzing::parse_from_bytes(data);
});
