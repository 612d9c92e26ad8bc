"""Data pipeline of DIGIT: crop geometry (`digit.data.crop`) and, later, the training dataset."""
