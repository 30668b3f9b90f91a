"""Generative agents (Park et al. 2023): memory stream, reflection, planning, reaction and dialogue in a sandbox world."""
