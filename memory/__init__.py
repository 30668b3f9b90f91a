"""Agent memory (installed as ``stepwise.memory``): pages, summaries, entities, memory streams."""
