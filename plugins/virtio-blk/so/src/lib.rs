//! The virtio-blk device exported as `libvmhost_virtio_blk.so`.
vm_plugin_api::export_plugin!(vm_virtio_blk::module());
