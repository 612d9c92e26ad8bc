"""The HDF5 part-mask cache (design.md, "Mask cache contract").

- ``layout``: datasets, attributes, ``MaskCache`` (fast per-image reads).
- ``scene``: annotations -> posed two-hand scenes -> masks and per-image values of a piece.
- ``pieces``: the ``<out>.partial/`` folder of a build in progress.
- ``assemble``: pieces or shards -> one cache file, atomically, chunks copied as stored.
- ``builder``: ``build_masks`` (``digit-render build-masks``); ``merge``: ``merge_shards``;
  ``verify``: ``verify_cache``; ``show``: ``show_mask``.
"""
