"""Analyses on top of the predictions: evidence fusion of the model, the anomaly score and expert rules."""
