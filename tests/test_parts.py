"""The 33-class part definition, checked against reference/mano.md and hand-made meshes."""

import colorsys
import json
import re
from pathlib import Path

import numpy as np
import pytest

from core.assets import TEXTURES_DIR
from core.errors import DigitError
from core.parts import DIGIT_TO_MANO_PART, class_table, class_table_json, palette, swap_hands
from render.part_labels import (
    face_classes,
    face_parts,
    vertex_parts_from_digit_json,
    vertex_parts_from_weights,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
MANO_MD = SHARED / "reference" / "mano.md"


def _mano_md() -> str:
    if not MANO_MD.exists():
        pytest.skip(f"{MANO_MD} absent (the shared reference folder is not beside this clone)")
    return MANO_MD.read_text()


def test_ids_and_names_follow_mano_joint_order():
    table = class_table()
    assert len(table) == 33
    assert [c.id for c in table] == list(range(33))
    assert table[0].name == "background" and table[0].hand is None
    for joint in range(16):
        right, left = table[1 + joint], table[17 + joint]
        assert (right.hand, right.mano_joint) == ("right", joint)
        assert (left.hand, left.mano_joint) == ("left", joint)
        assert right.name.removeprefix("right_") == left.name.removeprefix("left_")


def test_part_names_match_reference_table():
    text = _mano_md()
    # The reference's table: "| part | palm | index1 | ... |" under the MANO joint header.
    row = next(line for line in text.splitlines() if line.startswith("| part | palm"))
    names = [cell.strip() for cell in row.strip("|").split("|")[1:]]
    assert [c.name for c in class_table()[1:17]] == [f"right_{n}" for n in names]
    assert [c.name for c in class_table()[17:]] == [f"left_{n}" for n in names]


def test_digit_mapping_matches_reference_and_is_a_permutation():
    text = _mano_md()
    pairs = dict(
        (int(a), int(b)) for a, b in re.findall(r"(\d+)->(\d+)", text.split("DIGIT's labels")[1])
    )
    assert len(pairs) == 16
    assert tuple(pairs[v] for v in range(16)) == DIGIT_TO_MANO_PART
    assert sorted(DIGIT_TO_MANO_PART) == list(range(16))


def test_palette_left_right_related_but_distinct():
    colours = palette()
    assert colours.shape == (33, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours}) == 33
    for joint in range(1, 16):
        r = colorsys.rgb_to_hsv(*(colours[1 + joint] / 255.0))
        l = colorsys.rgb_to_hsv(*(colours[17 + joint] / 255.0))
        assert abs(r[0] - l[0]) < 0.02, "a part keeps its hue on both hands"
        assert r[1] - l[1] > 0.3, "the left version is clearly paler"


def test_committed_class_table_is_current():
    committed = json.loads((TEXTURES_DIR / "classes.json").read_text())
    assert committed == json.loads(class_table_json())
    assert (TEXTURES_DIR / "legend.png").exists()


def test_swap_hands():
    labels = np.array([[0, 1, 16, 17], [32, 5, 21, 0]], dtype=np.uint8)
    expected = np.array([[0, 17, 32, 1], [16, 21, 5, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(swap_hands(labels), expected)
    np.testing.assert_array_equal(swap_hands(swap_hands(labels)), labels)


def test_vertex_parts_from_weights_appends_palm_seal():
    weights = np.zeros((4, 16))
    weights[0, 3] = 1.0
    weights[1, [5, 6]] = [0.4, 0.6]
    weights[2, [0, 15]] = [0.5, 0.5]  # tie -> lower joint
    weights[3, 12] = 0.9
    np.testing.assert_array_equal(vertex_parts_from_weights(weights), [3, 6, 0, 12, 0])
    np.testing.assert_array_equal(vertex_parts_from_weights(weights, sealed=False), [3, 6, 0, 12])


def test_face_parts_majority_and_lowest_index_tiebreak():
    vertex_parts = np.array([4, 4, 7, 9, 2])
    faces = np.array([[0, 1, 2], [2, 0, 1], [2, 3, 4], [4, 3, 2], [3, 2, 0]])
    # majority 4; majority 4 (order irrelevant); all different -> vertex 2 (lowest index) has 7;
    # same face reordered -> still vertex 2; all different -> vertex 0 has 4.
    np.testing.assert_array_equal(face_parts(faces, vertex_parts), [4, 4, 7, 7, 4])
    np.testing.assert_array_equal(face_classes(faces, vertex_parts, "right"), [5, 5, 8, 8, 5])
    np.testing.assert_array_equal(face_classes(faces, vertex_parts, "left"), [21, 21, 24, 24, 21])


def test_digit_json_is_remapped(tmp_path):
    values = [8, 10, 1, 11, 7, 9, 12, 0]  # palm, index1..3, thumb1..3, ring1
    path = tmp_path / "segments.json"
    path.write_text(json.dumps(values))
    np.testing.assert_array_equal(
        vertex_parts_from_digit_json(path, 8), [0, 1, 2, 3, 13, 14, 15, 10]
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[0, 1", "not valid JSON"),
        ('{"a": 1}', "expected a JSON list"),
        ("[0, 1, 2]", "has 3 entries"),
        ("[0, 1, 2, 16]", "must lie in 0..15"),
    ],
)
def test_digit_json_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DigitError, match=message) as info:
        vertex_parts_from_digit_json(path, 4)
    assert str(path) in str(info.value)
    with pytest.raises(DigitError, match="not found"):
        vertex_parts_from_digit_json(tmp_path / "missing.json", 4)
