"""The project's own synthetic hand model in the MANO pickle format (not MANO data).

MANO files are licensed, so the project builds a stand-in that obeys the same pickle contract
(``reference/mano.md``): a quad-ring hand mesh (palm tube open at the wrist, four finger tubes out
of the knuckle ring, a thumb tube out of the radial-palmar side, rounded tips) sized from
``reference/hand_anatomy.md``, with smooth skinning weights, ring-centroid joint regressors,
finite-difference shape directions and PCA pose components of sampled natural poses.

Rest frame (that of the real MANO files): metres; right hand lies flat with the fingers along
-x, the back of the hand towards +y (palm normal -y), the thumb towards +z, and the wrist joint at
real MANO's (0.0957, 0.0064, 0.0062). The left model is the exact mirror x -> -x.

Everything is deterministic: the build uses only IEEE-exact numpy element-wise operations, libm
(``math``) trigonometry, exact sums (``math.fsum``), a built-in SplitMix64 generator and a Jacobi
eigensolver (``exact``), rounds every stored float to a fixed grid, and writes the pickle with its
own opcode emitter (``pickle_writer``), so the bytes do not depend on the numpy / scipy / BLAS
versions.

Modules: ``layout`` (which MANO joints make each digit), ``exact`` (bit-reproducible arithmetic),
``mesh`` (the hand's vertices for a set of dimensions), ``faces`` (triangles, oriented outwards),
``skinning`` (weights and joint regressor), ``pose_prior`` (joint axes, limits, natural poses;
used at run time by the synthetic data generator), ``pickle_writer`` (the version-proof pickle),
``build`` (the model's arrays, bytes and files; offline, ``scripts/build_synthetic_mano.py``).
"""
