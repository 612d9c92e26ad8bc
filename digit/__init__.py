"""DIGIT: the network, data pipeline, losses, training loop, metrics and visualisation."""
