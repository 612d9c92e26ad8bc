"""Which MANO joints make up each digit of the synthetic hand, and the digits' orders."""

from render.mano import NUM_JOINTS

N_JOINTS = NUM_JOINTS  # the MANO tree (`render.mano`): 16 joints, MANO_PARENTS
# Joints (proximal to distal) of each finger, in MANO's joint order.
FINGER_JOINTS = {
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "pinky": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
# The four long fingers, radial (index) to ulnar (little), as they sit on the knuckle ring.
LONG_FINGERS = ("index", "middle", "ring", "pinky")
DIGITS = ("index", "middle", "ring", "pinky", "thumb")  # owner ids 0..4 of tube vertices
