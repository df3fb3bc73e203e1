"""Images: read-only root filesystems made of layers, plus the config they run with.

An image is identified by the sha256 of its config JSON (Docker's image ID). Its
layers are unpacked once under ``<root>/images/layers/<diffid hex>/`` with whiteouts
already converted to overlayfs whiteouts, so a container's rootfs is one overlay
mount over the layer dirs and starting it copies nothing.

Modules (one concept each):
    reference   parse and normalise names like ``busybox``, ``sha256:<hex>`` (pure)
    config      normalise image configs, ``-c`` changes, layer/chain ids (pure)
    humanize    sizes and ages as ``docker images`` shows them (pure)
    safetar     extract one layer tar into a dir without ever writing outside it
    archive     read ``docker save`` and OCI image-layout archives
    loader      unpack layers to a temp dir, then commit layers + record atomically
    writer      write a ``docker save`` archive (build --output, save)
    build       build an image from a recipe dir (images/busybox)
    store       the image records: resolve, tags, list, remove (import-light API)
"""
