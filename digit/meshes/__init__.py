"""MANO meshes from DIGIT's joints, one job per module: fit (the batched MANO fit), skinning
(its fast differentiable forward), capsules (bone capsules and the two-hand interpenetration
term), files (OBJ and MANO_NeuralAnnot JSON), pictures (shaded, part-coloured and side views),
demo (what `digit-demo --meshes` adds), evaluate (MPVPE against ground-truth MANO fits for
`digit-eval --meshes`)."""
