"""Tools agents call (installed as ``stepwise.tools``): think tools, LongMT memory tools, tool errors."""
