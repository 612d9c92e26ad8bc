"""Annotation files in InterHand2.6M's exact layout, schema and types.

Types as in the real files: data.json holds 0/1 integers (`joint_valid` rows, `hand_type_valid`),
joint_3d.json holds JSON booleans; JSON keys are `str(capture)` and `str(frame_idx)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.boxes import bbox_from_joints
from core.joints import skeleton_text

PLACEHOLDER_JOINT = (1.0, 1.0, 1.0)  # what the real files store for unannotated joints


def tight_bbox(uv: np.ndarray, valid: np.ndarray) -> list[float] | None:
    """The official annotated bbox [x, y, w, h] (`core.boxes.bbox_from_joints`) as JSON numbers;
    uv: (J, 2); valid: (J,) bool. None if nothing is valid."""
    box = bbox_from_joints(uv, valid)
    return None if np.isnan(box).any() else [float(v) for v in box]


@dataclass
class SplitWriter:
    """Collects one split's annotations and writes them in InterHand2.6M's files."""

    split: str
    images: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    cameras: dict[str, dict] = field(default_factory=dict)
    joints: dict[str, dict[str, dict]] = field(default_factory=dict)
    mano: dict[str, dict[str, dict]] = field(default_factory=dict)
    rootnet: list[dict] = field(default_factory=list)

    def add_frame(
        self,
        capture: int,
        frame_idx: int,
        joints_world: np.ndarray,
        joint_valid: np.ndarray,
        hand_type: str,
        fits: dict[str, dict | None] | None,
    ) -> None:
        """One time step: joints_world (42, 3) mm, joint_valid (42,) bool (annotated at all),
        fits {"right"|"left": {"pose", "shape", "trans"} or None}, or None (frame has no MANO)."""
        coords = np.where(joint_valid[:, None], joints_world, PLACEHOLDER_JOINT)
        self.joints.setdefault(str(capture), {})[str(frame_idx)] = {
            "world_coord": coords.tolist(),
            "joint_valid": [[bool(v)] for v in joint_valid],
            "hand_type": hand_type,
            "hand_type_valid": True,
        }
        if fits is not None:
            self.mano.setdefault(str(capture), {})[str(frame_idx)] = fits

    def add_image(
        self,
        image_id: int,
        file_name: str,
        hw: tuple[int, int],
        capture: int,
        seq_name: str,
        camera: str,
        frame_idx: int,
        bbox: list[float],
        joint_valid: np.ndarray,
        hand_type: str,
    ) -> None:
        """One image and its annotation (same id): joint_valid (42,) bool = annotated and inside."""
        self.images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": hw[1],
                "height": hw[0],
                "capture": capture,
                "subject": capture,
                "seq_name": seq_name,
                "camera": camera,
                "frame_idx": frame_idx,
            }
        )
        self.annotations.append(
            {
                "id": image_id,
                "image_id": image_id,
                "bbox": bbox,
                "joint_valid": [[int(v)] for v in joint_valid],
                "hand_type": hand_type,
                "hand_type_valid": 1,
            }
        )

    def write(self, root: Path) -> None:
        """Write annotations/{split}/InterHand2.6M_{split}_*.json (and RootNet for val/test)."""
        ann_dir = root / "annotations" / self.split
        ann_dir.mkdir(parents=True, exist_ok=True)
        prefix = ann_dir / f"InterHand2.6M_{self.split}_"
        _dump(Path(f"{prefix}data.json"), {"images": self.images, "annotations": self.annotations})
        _dump(Path(f"{prefix}camera.json"), self.cameras)
        _dump(Path(f"{prefix}joint_3d.json"), self.joints)
        _dump(Path(f"{prefix}MANO_NeuralAnnot.json"), self.mano)
        if self.rootnet:
            out = root / "rootnet_output" / f"rootnet_interhand2.6m_output_{self.split}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            _dump(out, self.rootnet)
        (root / "annotations" / "skeleton.txt").write_text(skeleton_text())


def _dump(path: Path, obj: object) -> None:
    """JSON without spaces, written to a temporary name first so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, separators=(",", ":")))
    tmp.replace(path)
