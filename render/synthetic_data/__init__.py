"""The synthetic stand-in for InterHand2.6M: rigs, motion, shaded images, annotation files."""
