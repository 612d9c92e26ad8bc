"""MANO hand model, InterHand2.6M data layer, rasterizer and the HDF5 part-mask cache."""
