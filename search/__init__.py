"""Search over agent steps (installed as ``stepwise.search``): explorer, trees, preference pairs."""

from __future__ import annotations

from stepwise.lazy_exports import lazy_exports

_HOMES = {  # name -> the module that defines it
    "Environment": "stepwise.search.environment",
    "Episode": "stepwise.search.environment",
    "Export": "stepwise.search.environment",
    "Reward": "stepwise.search.environment",
    "Searchable": "stepwise.search.environment",
    "ExploreOptions": "stepwise.search.options",
    "Explorer": "stepwise.search.explorer",
    "Node": "stepwise.search.tree",
    "Tree": "stepwise.search.tree",
    "load_tree": "stepwise.search.tree",
    "extract_pairs": "stepwise.search.pairs",
    "read_pairs": "stepwise.search.pairs",
    "write_pairs": "stepwise.search.pairs",
    "PairOptions": "stepwise.search.run",
    "RunReport": "stepwise.search.run",
    "explore_tasks": "stepwise.search.run",
    "EventLog": "stepwise.search.events",
}
__all__ = [
    "Environment",
    "Episode",
    "EventLog",
    "ExploreOptions",
    "Explorer",
    "Export",
    "Node",
    "PairOptions",
    "Reward",
    "RunReport",
    "Searchable",
    "Tree",
    "explore_tasks",
    "extract_pairs",
    "load_tree",
    "read_pairs",
    "write_pairs",
]


# Lazy, so that importing the package stays cheap: the explorer pulls in the models and
# the scorers, which load only when it is used.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
