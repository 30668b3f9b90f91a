"""Search over agent steps (installed as ``stepwise.search``): explorer, trees, preference pairs."""
