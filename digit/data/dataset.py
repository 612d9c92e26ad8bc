"""The torch Dataset of DIGIT: InterHand2.6M images, cropped, with cached part masks.

One item per image of a split (data.json order). Per item (`InterHandDataset.__getitem__`):
1. the RGB image, cropped by A = `crop_transform(crop_box, S, rot, scale, shift, flip)` with the
   split's processed crop box (training may draw a random shift/scale/rotation/flip/colour gain,
   `digit.data.augment`), bilinear, colour gain and clip in 0..255, then / 255;
2. the 42 joints (data.json projection) mapped by A, with camera depth and data.json validity;
   a flip swaps the right/left joint blocks, their validity and the hand-type bits;
3. the full-resolution part mask of the cache (`core.mask_cache.MaskCache`), warped by
   A with nearest-neighbour, hands swapped on flip, nearest-downsampled S -> S/2;
4. evaluation fields, never flipped: A, camera-frame joints, validity, root depths, intrinsics.
`collate` stacks items into a `digit.data.batch.Batch` and builds the training targets.

Masks: `<data_root>/masks/masks_{split}.h5` unless given. Training needs them (a missing file
is one DigitError line saying how to build it); evaluation works without (segm_valid False,
segm_target zeros, lr_iou NaN).

Unreadable samples: with `skip_unreadable` (the default when training), an item whose image
(missing, empty, truncated, corrupt, wrong size) or mask chunk cannot be read is replaced by the
next readable item of the split, and that item lists one line per sample it skipped (key
"skipped", present only then; `Batch.skipped` after `collate`), so the trainer can count and
list them. Without it (evaluation) such an item is one DigitError line: a metric must not
silently drop images.

Workers: the HDF5 file is opened lazily once per process (never shared across a fork), and the
augmentation of item i in epoch e depends only on (seed, e, i), so any worker layout gives the
same tensors. Call `set_loader_epoch(loader, epoch)` (or `dataset.set_epoch`) before each epoch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from core.errors import DigitError
from core.image_io import load_rgb
from core.interhand.reader import InterHandSplit
from core.joints import LEFT_ROOT, RIGHT_ROOT
from core.mask_cache import MaskCache, match_split
from core.parts import swap_hands
from core.paths import build_masks_command, mask_cache_path, resolve_data_root
from core.splits import check_split
from digit.data.augment import (
    NO_AUGMENT,
    AugmentParams,
    AugmentSettings,
    apply_color_gain,
    draw_augment,
    sample_rng,
)
from digit.data.batch import Batch
from digit.data.crop import (
    apply_affine,
    crop_transform,
    source_points,
    supersample_factor,
    swap_joint_hands,
    warp_image,
    warp_labels,
)
from digit.targets import build_pose_targets

# Unreadable training samples passed over in a row before the item itself fails: more means a
# damaged dataset, not a few bad files.
MAX_SKIPPED_IN_A_ROW = 16


class InterHandDataset(Dataset):
    """Cropped samples of one split; see the module doc for the processing.

    data_root: InterHand2.6M-layout folder (None: the synthetic default). split: train|val|test.
    masks: cache file or folder (None: `<data_root>/masks/masks_{split}.h5`).
    train: draw augmentation (when `augment.enabled`) and require the masks.
    input_size: crop side S (labels S/2, heatmaps S/4). antialias: sample the crop as the
    mean over each pixel's square (`NetworkConfig.antialias`). seed: augmentation seed.
    limit: only the first `limit` images of data.json. skip_unreadable: replace unreadable
    samples (see the module doc); None = `train`.
    Attributes: split (InterHandSplit), mask_path (Path), has_masks (bool), epoch (int).
    """

    def __init__(
        self,
        data_root: Path | None,
        split: str,
        masks: Path | None = None,
        train: bool = False,
        augment: AugmentSettings | None = None,
        input_size: int = 256,
        seed: int = 0,
        limit: int | None = None,
        skip_unreadable: bool | None = None,
        antialias: bool = False,
    ) -> None:
        check_split(split)
        if input_size % 4:
            raise DigitError(f"input size: must be a multiple of 4, got {input_size}")
        if limit is not None and limit < 1:
            raise DigitError(f"--limit: must be >= 1, got {limit}")
        self.data_root = resolve_data_root(data_root)
        self.split_name = split
        self.train = train
        self.skip_unreadable = train if skip_unreadable is None else bool(skip_unreadable)
        self.augment = augment if augment is not None else AugmentSettings()
        self.input_size = int(input_size)
        self.antialias = bool(antialias)
        self.seed = int(seed)
        self.epoch = 0
        self.mask_path = mask_cache_path(masks, self.data_root, split)

        full = InterHandSplit.from_root(self.data_root, split)
        self.split = full if limit is None else full.subset(slice(0, min(limit, len(full))))
        n = len(self.split)
        self.has_masks = self.mask_path.is_file()
        if not self.has_masks and train:
            raise DigitError(
                f"{self.mask_path}: mask cache not found (training needs the part masks); "
                f"run `{build_masks_command(self.data_root, split, self.mask_path)}` first"
            )
        # Per image: row of the cache (-1 without masks), mask validity, interaction degree.
        self._cache_row = np.full(n, -1, dtype=np.int64)
        self._segm_valid = np.zeros(n, dtype=bool)
        self._lr_iou = np.full(n, np.nan, dtype=np.float32)
        if self.has_masks:
            self._index_cache()
        self._cache: MaskCache | None = None
        self._cache_pid: int | None = None

    def _index_cache(self) -> None:
        """Pair the cache with this split (same split, data.json sha256, file names: else one
        DigitError naming both files), match rows by image id, read the small arrays once."""
        path = self.mask_path
        with MaskCache(path) as cache:
            self._cache_row = match_split(cache, self.split, self.data_root)
            valid = cache.file["valid"][:]
            lr_iou = cache.file["lr_iou"][:]
            selection = cache.attrs.selection
        missing = int((self._cache_row < 0).sum())
        if missing:  # same data.json, so a --limit or --shard build: the whole split is needed
            default = mask_cache_path(None, self.data_root, self.split_name)
            cmd = build_masks_command(self.data_root, self.split_name, default)
            if path.resolve() == default.resolve():
                cmd += " --overwrite"
            shard = (selection or {}).get("shard")
            how = f"build the whole split's masks with `{cmd}`"
            if shard is not None:
                how = (
                    f"it is shard {shard[0]}/{shard[1]}: build all {shard[1]} and join them "
                    f"with `digit-render merge --out {default} --shards {shard[1]}`"
                )
            raise DigitError(
                f"{path}: mask cache lacks {missing} of the {len(self.split)} images used "
                f"(it holds the selection {selection} of {self.split.files.data}); {how}"
            )
        self._segm_valid = valid[self._cache_row].astype(bool)
        self._lr_iou = lr_iou[self._cache_row].astype(np.float32)

    # -- workers --

    def _mask_cache(self) -> MaskCache:
        """This process's open cache (HDF5 handles must not cross a fork)."""
        if self._cache is None or self._cache_pid != os.getpid():
            self._cache = MaskCache(self.mask_path)
            self._cache_pid = os.getpid()
        return self._cache

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = None
        state["_cache_pid"] = None
        return state

    def close(self) -> None:
        """Close this process's mask cache handle (reopened on the next read)."""
        if self._cache is not None and self._cache_pid == os.getpid():
            self._cache.close()
        self._cache = None

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of `epoch` (workers started later see it)."""
        self.epoch = int(epoch)

    # -- items --

    def __len__(self) -> int:
        return len(self.split)

    def augmentation(self, i: int) -> AugmentParams:
        """The augmentation of item i in the current epoch (NO_AUGMENT unless training)."""
        if not (self.train and self.augment.enabled):
            return NO_AUGMENT
        return draw_augment(self.augment, sample_rng(self.seed, self.epoch, i))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Item i (`sample`), or with `skip_unreadable` the first readable item from i on; one
        that passed over unreadable samples also holds "skipped": a list of one line each."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} out of range for a dataset of {len(self)}")
        if not self.skip_unreadable:
            return self.sample(i)
        skipped: list[str] = []
        for j in range(i, i + min(MAX_SKIPPED_IN_A_ROW, len(self))):
            try:
                item = self.sample(j % len(self))
            except DigitError as exc:
                skipped.append(str(exc))
                continue
            if skipped:  # rare: items otherwise hold tensors only
                item["skipped"] = skipped
            return item
        raise DigitError(
            f"{self.split.image_path(i)}: this and the {len(skipped) - 1} training samples after "
            f"it cannot be read (first: {skipped[0]})"
        )

    def sample(self, i: int) -> dict[str, torch.Tensor]:
        """Item i as tensors (S = input_size, L = S / 2):

        image (3, S, S) float32 RGB in [0, 1]; joints_crop (42, 2) float64 crop pixels (u, v),
        after any flip (blocks swapped); joint_depth (42,) float64 camera z, mm (flipped like
        the joints); joint_valid_crop (42,) bool data.json validity after any flip (not yet
        limited to the crop); hand_type (2,) float32 (right, left) bits after any flip;
        hand_type_valid () bool; segm_target (L, L) uint8 class ids; segm_valid () bool;
        index, image_id () int64; crop_affine (2, 3) float64 original -> crop pixels;
        joints_cam (42, 3) float64 mm; joint_valid (42,) bool (evaluation, never flipped);
        abs_depth (2,) float64 mm; focal, princpt (2,) float64; hand_type_code () int64;
        lr_iou () float32; flip () bool. An unreadable image or mask is one DigitError.
        """
        rec = self.split.gather([i])
        s = self.input_size
        aug = self.augmentation(i)
        A = crop_transform(rec.crop_box[0], s, aug.rot_deg, aug.scale, aug.shift, aug.flip)
        src = source_points(A, 1, (s, s))  # one sampling grid for the image and its mask

        image = self._crop_image(i, rec.hw[0], A, src, aug)
        joints = np.concatenate(
            [apply_affine(A, rec.joints_img[0]), rec.joints_cam[0, :, 2:3]], axis=-1
        )
        valid = rec.joint_valid[0]
        hand_type = rec.hand_type_pair[0].astype(np.float32)
        if aug.flip:  # the mirrored right hand is the network's left hand
            joints, valid = swap_joint_hands(joints, valid)
            hand_type = hand_type[::-1].copy()
        segm = self._crop_mask(i, src, aug.flip)

        K = rec.K[0]
        cam = rec.joints_cam[0]
        return {
            "image": image,
            "joints_crop": torch.from_numpy(np.ascontiguousarray(joints[:, :2])),
            "joint_depth": torch.from_numpy(np.ascontiguousarray(joints[:, 2])),
            "joint_valid_crop": torch.from_numpy(np.asarray(valid, dtype=bool).copy()),
            "hand_type": torch.from_numpy(hand_type),
            "hand_type_valid": torch.tensor(bool(rec.hand_type_valid[0])),
            "segm_target": segm,
            "segm_valid": torch.tensor(bool(self._segm_valid[i])),
            "index": torch.tensor(int(rec.index[0]), dtype=torch.int64),
            "image_id": torch.tensor(int(rec.image_id[0]), dtype=torch.int64),
            "crop_affine": torch.from_numpy(A),
            "joints_cam": torch.from_numpy(cam.copy()),
            "joint_valid": torch.from_numpy(rec.joint_valid[0].copy()),
            "abs_depth": torch.from_numpy(cam[[RIGHT_ROOT, LEFT_ROOT], 2].copy()),
            "focal": torch.tensor([K[0, 0], K[1, 1]], dtype=torch.float64),
            "princpt": torch.tensor([K[0, 2], K[1, 2]], dtype=torch.float64),
            "hand_type_code": torch.tensor(int(rec.hand_type_code[0]), dtype=torch.int64),
            "lr_iou": torch.tensor(self._lr_iou[i], dtype=torch.float32),
            "flip": torch.tensor(aug.flip),
        }

    def _crop_image(
        self, i: int, hw: np.ndarray, A: np.ndarray, src: torch.Tensor, aug: AugmentParams
    ) -> torch.Tensor:
        """(3, S, S) float32 in [0, 1]: bilinear crop (antialiased: `supersample_factor`
        samples per axis), colour gain and clip in 0..255, / 255."""
        path = self.split.image_path(i)
        rgb = load_rgb(path)
        if rgb.shape[:2] != tuple(int(x) for x in hw):
            raise DigitError(
                f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]} pixels, "
                f"data.json says {int(hw[1])}x{int(hw[0])}"
            )
        pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(torch.float32)
        k = supersample_factor(A, self.antialias)
        if k == 1:
            crop = warp_image(pixels, None, src=src)[0]
        else:
            crop = warp_image(pixels, A, self.input_size, supersample=k)[0]
        if aug.gain != (1.0, 1.0, 1.0):
            crop = apply_color_gain(crop, aug.gain)
        return (crop / 255.0).clamp_(0.0, 1.0)  # clamp: bilinear rounding can pass 255 by ulps

    def _crop_mask(self, i: int, src: torch.Tensor, flip: bool) -> torch.Tensor:
        """(S/2, S/2) uint8 class ids (zeros without a cache): the crop's labels at its even
        pixels (2i, 2j), i.e. DIGIT's nearest 256 -> 128 downsampling of the warped mask."""
        label_size = self.input_size // 2
        row = int(self._cache_row[i])
        if row < 0:
            return torch.zeros((label_size, label_size), dtype=torch.uint8)
        mask = self._mask_cache().mask(row)
        labels = warp_labels(np.ascontiguousarray(mask)[None], None, src=src[:, ::2, ::2])[0]
        if flip:
            labels = swap_hands(labels)
        return torch.from_numpy(np.ascontiguousarray(labels))


# ---- batching ---------------------------------------------------------------------------------


def collate(samples: Sequence[dict[str, torch.Tensor]]) -> Batch:
    """Stack items of `InterHandDataset` into a `Batch` and build its `PoseTargets` (float32)."""
    if not samples:
        raise ValueError("collate: no samples")

    def stack(key: str) -> torch.Tensor:
        return torch.stack([s[key] for s in samples])

    crop_size = samples[0]["image"].shape[-1]
    targets = build_pose_targets(
        stack("joints_crop"),
        stack("joint_depth"),
        stack("joint_valid_crop"),
        stack("hand_type"),
        stack("hand_type_valid"),
        crop_size=crop_size,
    )  # float64 maths (depths of ~1 m minus root depths), float32 storage
    targets = type(targets)(
        joints_hm=targets.joints_hm.float(),
        joint_valid=targets.joint_valid,
        rel_root_bins=targets.rel_root_bins.float(),
        rel_root_valid=targets.rel_root_valid,
        hand_type=targets.hand_type.float(),
        hand_type_valid=targets.hand_type_valid,
    )
    return Batch(
        image=stack("image"),
        targets=targets,
        segm_target=stack("segm_target").long(),
        segm_valid=stack("segm_valid"),
        index=stack("index"),
        image_id=stack("image_id"),
        crop_affine=stack("crop_affine"),
        joints_cam=stack("joints_cam"),
        joint_valid=stack("joint_valid"),
        abs_depth=stack("abs_depth"),
        focal=stack("focal"),
        princpt=stack("princpt"),
        hand_type_code=stack("hand_type_code"),
        hand_type_valid=stack("hand_type_valid"),
        lr_iou=stack("lr_iou"),
        skipped=tuple(line for s in samples for line in s.get("skipped", ())),
    )


def make_loader(
    dataset: InterHandDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    distributed: bool = False,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader of `Batch`es (`collate_fn=collate`).

    Shuffling uses a `DistributedSampler` in every case (one replica when not distributed), so
    the order of epoch e depends only on (dataset.seed, e): call `set_loader_epoch` before each
    epoch. distributed: shard over the initialised process group (each rank gets
    ceil(N / world) items; the last ones repeat to even the shards out unless drop_last).
    Workers are not persistent, so `set_epoch` reaches them at the start of every epoch.
    """
    sampler = None
    if distributed:
        sampler = DistributedSampler(
            dataset, shuffle=shuffle, seed=dataset.seed, drop_last=drop_last
        )
    elif shuffle:
        sampler = DistributedSampler(
            dataset, num_replicas=1, rank=0, shuffle=True, seed=dataset.seed, drop_last=drop_last
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch of the loader's dataset (augmentation) and sampler (shuffle order)."""
    if isinstance(loader.dataset, InterHandDataset):
        loader.dataset.set_epoch(epoch)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
