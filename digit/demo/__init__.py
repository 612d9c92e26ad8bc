"""`digit-demo`'s work, one job per module: inputs (boxes), intrinsics (focal and principal
point), predict (batched network runs, crop undone), lift (2.5D -> root-relative 3D), truth
(ground truth and per-image error with --split), panel (pictures), record (JSON), run (the
whole run)."""
