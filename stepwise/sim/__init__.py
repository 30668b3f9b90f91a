"""Simulated worlds with known ground truth, for testing and demonstrating agents offline.

Their numbers (prices, balances, scores) are always labelled as simulated; nothing here
describes a real airline or a real model.
"""
