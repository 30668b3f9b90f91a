"""A sandbox town for generative agents (a simulation): areas, objects with states, agents with locations and a game clock."""
